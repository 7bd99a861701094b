#pragma once
// Forward operators A of y = A(x) + n, on batches: x is [B, *input_shape], A(x) is [B, *output_shape].
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/registry.h"
#include "core/shape.h"

namespace psbench {

class SvdView;

class Operator {
 public:
  virtual ~Operator() = default;
  virtual std::string name() const = 0;
  virtual Shape input_shape() const = 0;   // one x, without the batch dimension
  virtual Shape output_shape() const = 0;  // one y
  virtual at::Tensor forward(const at::Tensor& x) const = 0;
  virtual bool is_linear() const = 0;
  // True adjoint A^T (tests check <Ax, y> = <x, A^T y>); linear operators only.
  virtual at::Tensor adjoint(const at::Tensor& y) const;
  // A cheap (regularised) inverse used for initialisation and display.
  virtual bool has_pseudo_inverse() const { return false; }
  virtual at::Tensor pseudo_inverse(const at::Tensor& y) const;
  // The entries of one y that depend on x, as a 0/1 tensor of output_shape (undefined: all of them).
  // Inpainting's y keeps the image shape, but its unobserved entries are noise alone; measures of fit
  // to y (data_consistency) count only the support.
  virtual at::Tensor output_support() const { return {}; }
  // Dense matrix [prod(output_shape), prod(input_shape)] acting on flattened vectors; small problems.
  virtual bool has_matrix() const { return false; }
  virtual at::Tensor matrix() const;
  // The SVD view A = U diag(s) V^T (operators/svd.h). Default: a dense SVD for linear operators with at
  // most kMaxSvdSize inputs and outputs; operators with structure override both (no dense matrices).
  virtual bool has_svd() const;
  virtual std::shared_ptr<const SvdView> svd() const;  // throws std::logic_error when !has_svd()
  // L with ||A(x) - A(x')|| <= L ||x - x'||: the scale of the likelihood's curvature, L^2 / sigma_y^2, that step
  // sizes must respect. Default: linear operators with an SVD view, the largest singular value (exact); other
  // linear ones, 50 power iterations on A^T A (an estimate from below); nonlinear ones, the same power
  // iterations on J^T J at x = 0 and at one fixed random point (J v by central differences, J^T w through
  // autograd), the larger of the two: an estimate. Operators with a closed form override it.
  virtual double lipschitz() const;
};

// Gaussian measurement noise n ~ N(0, sigma_y^2 I), kept apart from the operator.
struct GaussianNoise {
  double sigma_y = 0.1;
  at::Tensor sample(const at::Tensor& clean, at::Generator& gen) const;
  // R(x) = ||y - A(x)||^2 / (2 sigma_y^2), one value per batch element.
  at::Tensor potential(const at::Tensor& y, const at::Tensor& ax) const;
};

// A task turns a ground-truth shape into an operator and noise model for one measurement. Any
// operator randomness (a random matrix, mask or kernel) is drawn once here from `gen`, which the
// runner derives from (experiment seed, task, dataset, measurement index) only.
struct MeasurementModel {
  std::unique_ptr<Operator> op;
  GaussianNoise noise;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual MeasurementModel build(const Shape& x_shape, at::Generator& gen) const = 0;
};

using TaskRegistry = Registry<Task>;
using TaskRegistrar = Registrar<Task>;

int64_t numel(const Shape& s);

}  // namespace psbench
