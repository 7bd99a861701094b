#pragma once
// Shared pieces of the image operators of ALGORITHMS.md §8 (docs/tasks.md describes the tasks):
// shape and option checks, the "auto" scaling of the papers' 256-pixel geometric settings, boundary
// folding for padded convolutions (with its exact adjoint), dense matrices by probing, and a
// Tikhonov solve by conjugate gradients used as the pseudo-inverse of blurs.
#include <ATen/ATen.h>

#include <string>

#include "core/errors.h"
#include "core/options.h"
#include "operators/operator.h"

namespace psbench {

// Linear operators on at most this many input numbers expose their dense matrix (28x28x1 = 784;
// 3x32x32 = 3072; 64x64x1 = 4096).
inline constexpr int64_t kMaxMatrixInputs = 4096;
// The side of the images the papers' geometric settings (kernel sizes, boxes) were chosen for.
inline constexpr double kPaperSide = 256.0;
// sigma_y default: DPS uses 0.05 (the noise-space Langevin paper uses 0.1).
inline constexpr double kDefaultSigmaY = 0.05;
// Prior pixel scale used to regularise pseudo-inverses: EDM's sigma_data for images in [-1, 1].
inline constexpr double kPixelScale = 0.5;

// The `sigma_y` option every image task declares, and its checked value.
OptionSpec sigma_y_option();
double checked_sigma_y(const std::string& task, const Options& o);

// Throws a ConfigError unless x_shape is [C, H, W] with positive sizes.
void check_image_shape(const std::string& task, const Shape& x_shape);

// value * side / 256: a paper setting for 256x256 images transferred to an image of side `side`.
double scale_from_paper(double paper_value, int64_t side);
// Smallest odd integer >= v (and >= 1).
int64_t smallest_odd_at_least(double v);
// Largest odd integer <= n (n >= 1).
int64_t largest_odd_at_most(int64_t n);

// Boundary extension of padded convolutions.
//   Reflect:   whole-sample mirror, edge not repeated (d c b | a b c d); torch ReflectionPad2d (used by
//              the DPS blur code), scipy.ndimage mode 'mirror'.
//   Symmetric: half-sample mirror, edge repeated (c b a | a b c d); scipy.ndimage mode 'reflect'.
enum class Padding { Reflect, Symmetric };
Padding parse_padding(const std::string& name);
// The sample of a length-n signal that padded position i (any integer) reads.
int64_t fold_index(int64_t i, int64_t n, Padding mode);

// Padding of the last two dimensions as an explicit linear map (a gather) with its exact adjoint
// (a scatter-add that folds the border back onto the samples it copied).
class PaddedGrid {
 public:
  PaddedGrid() = default;
  PaddedGrid(int64_t h, int64_t w, int64_t pad_h, int64_t pad_w, Padding mode);
  at::Tensor pad(const at::Tensor& x) const;        // [..., H, W] -> [..., H + 2 pad_h, W + 2 pad_w]
  at::Tensor pad_adjoint(const at::Tensor& z) const;  // [..., H + 2 pad_h, W + 2 pad_w] -> [..., H, W]

 private:
  int64_t h_ = 0, w_ = 0;
  at::Tensor rows_, cols_;  // int64 source indices of each padded row / column
};

// Dense [prod(output_shape), prod(input_shape)] matrix of a linear operator, by applying it to the
// identity basis (in float64, in chunks).
at::Tensor probe_matrix(const Operator& op);

// Base of the linear image operators: the dense matrix is available for small inputs.
class LinearImageOperator : public Operator {
 public:
  bool is_linear() const override { return true; }
  bool has_matrix() const override { return numel(input_shape()) <= kMaxMatrixInputs; }
  at::Tensor matrix() const override;
};

// argmin_x ||A x - y||^2 + lambda ||x||^2 for every batch element, i.e. the solution of
// (A^T A + lambda I) x = A^T y, by conjugate gradients in float64 (result in y's dtype). Stops when
// the residual of the normal equations is below rel_tol * ||A^T y|| for every element.
at::Tensor tikhonov_solve(const Operator& op, const at::Tensor& y, double lambda, int64_t max_iter = 500,
                          double rel_tol = 1e-8);

// "task NAME: " prefix of error messages.
std::string task_context(const std::string& task);

}  // namespace psbench
