#pragma once
// The SVD view of a linear operator (issue 16; what MCGdiff, DDRM and DDNM need): A = U diag(s) V^T with
// U an orthogonal transform of the output space R^m, V one of the input space R^n (both full, null
// spaces included), and s > 0 the r nonzero singular values: A v_i = s_i u_i for i < r, A v_i = 0 for
// i >= r, and the output coordinates u_i, i >= r, see noise alone. Spectral coordinates x_bar = V^T x
// therefore split into the r observed ones, y_bar_i = s_i x_bar_i + sigma_y eps_i with y_bar = U^T y, and
// the n - r the measurement does not see.
//
// U and V are applied, never formed, where the operator's structure allows (operators/svd.cpp): a
// permutation for inpainting masks, an orthonormal transform inside each block for average-pooling
// super-resolution, Kronecker products of the two 1-D SVDs for separable blurs, Householder reflections
// completing a thin SVD for random low-rank maps. Any other linear operator on at most kMaxSvdSize
// numbers in and out gets a dense SVD of its matrix.
#include <ATen/ATen.h>

#include <memory>

#include "core/shape.h"

namespace psbench {

class Operator;

// Dense SVD for linear operators with at most this many inputs and outputs (64 x 64 x 1 = 4096; the
// factors then take 2 x 4096^2 doubles, 268 MB).
inline constexpr int64_t kMaxSvdSize = 4096;
// Singular values at or below this fraction of the largest count as zero (numerical rank).
inline constexpr double kSvdRankTolerance = 1e-10;

// An orthogonal transform Q of R^d on batches of flattened vectors [B, d], in the batch's dtype.
class Orthogonal {
 public:
  virtual ~Orthogonal() = default;
  virtual int64_t dim() const = 0;
  virtual at::Tensor apply(const at::Tensor& c) const = 0;            // Q c
  virtual at::Tensor apply_transpose(const at::Tensor& v) const = 0;  // Q^T v
};

class SvdView {
 public:
  // s: [r] > 0 (any order); u acts on prod(output_shape), v on prod(input_shape).
  SvdView(Shape input_shape, Shape output_shape, at::Tensor s, std::shared_ptr<const Orthogonal> u,
          std::shared_ptr<const Orthogonal> v);
  int64_t rank() const { return s_.size(0); }
  const at::Tensor& singular_values() const { return s_; }  // float64 [r]
  const Shape& input_shape() const { return in_; }
  const Shape& output_shape() const { return out_; }

  at::Tensor vt(const at::Tensor& x) const;   // [B, *input_shape] -> [B, n]: V^T x
  at::Tensor v(const at::Tensor& c) const;    // [B, n] -> [B, *input_shape]: V c
  at::Tensor ut(const at::Tensor& y) const;   // [B, *output_shape] -> [B, m]: U^T y
  at::Tensor u(const at::Tensor& c) const;    // [B, m] -> [B, *output_shape]: U c
  // U diag(s) V^T x and V diag(s) U^T y through the factors (tests compare them with the operator).
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor adjoint(const at::Tensor& y) const;
  // The truncated SVD: singular values below rel_floor times the largest count as zero, their directions as
  // unobserved (the kept ones stay first, in their order; the dropped ones follow, then the null space). The
  // view of A - sum over dropped i of s_i u_i v_i^T, the regularised pseudo-inverse DDRM's code uses for blurs.
  std::shared_ptr<const SvdView> truncated(double rel_floor) const;

 private:
  Shape in_, out_;
  at::Tensor s_;
  std::shared_ptr<const Orthogonal> u_, v_;
};

// Building blocks, used by the operators' svd() and by the tests.
// Q given as a dense [d, d] matrix (float64).
std::shared_ptr<const Orthogonal> dense_orthogonal(at::Tensor q);
// Q = [Q_r | completion] for orthonormal columns Q_r [d, r]: the first r columns are Q_r exactly, the
// rest an orthonormal basis of their complement, applied as r Householder reflections (O(d r) per vector).
std::shared_ptr<const Orthogonal> completed_orthogonal(const at::Tensor& q_r);
// (Q c)[perm[i]] = c[i]: coordinate i of the spectral vector is entry perm[i] of the flattened vector.
std::shared_ptr<const Orthogonal> permutation_orthogonal(at::Tensor perm);

// How many singular values in s exceed kSvdRankTolerance times the largest.
int64_t numerical_rank(const at::Tensor& s);

// The dense SVD of a linear operator with at most kMaxSvdSize inputs and outputs (its matrix, or the
// matrix probed column by column).
std::shared_ptr<const SvdView> dense_svd(const Operator& op);

}  // namespace psbench
