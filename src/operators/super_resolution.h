#pragma once
// Super-resolution operators (ALGORITHMS.md §8): average pooling (noise-space Langevin paper) and
// antialiased bicubic downsampling (DPS), both by an integer factor s that divides the image side.
#include "operators/image_ops.h"

namespace psbench {

// y = mean over each s x s block. A A^T = I / s^2, so the Moore-Penrose inverse is s^2 A^T
// (nearest-neighbour upsampling).
class AvgPoolDownsample : public LinearImageOperator {
 public:
  AvgPoolDownsample(const Shape& x_shape, int64_t factor);
  std::string name() const override { return "sr_avgpool"; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return {in_[0], in_[1] / s_, in_[2] / s_}; }
  at::Tensor forward(const at::Tensor& x) const override;
  at::Tensor adjoint(const at::Tensor& y) const override;
  bool has_pseudo_inverse() const override { return true; }
  at::Tensor pseudo_inverse(const at::Tensor& y) const override;
  // s = 1/factor for every output pixel; V = an orthonormal transform inside each block whose first
  // vector is the block's constant, observed coordinates first; U = I.
  bool has_svd() const override { return true; }
  std::shared_ptr<const SvdView> svd() const override;

 private:
  Shape in_;
  int64_t s_;
};

// Rows of the 1-D antialiased bicubic downsampling matrix [n / s, n] with PIL's convention: output
// sample i has centre (i + 0.5) s in input coordinates, input sample j sits at j + 0.5, the weight is
// the Keys cubic (a = -0.5) stretched by s, k((j + 0.5 - (i + 0.5) s) / s), and each row is divided by
// its sum over the samples inside the image (weights falling outside are dropped, not mirrored).
at::Tensor bicubic_downsample_matrix(int64_t n, int64_t factor);
double keys_cubic(double t);  // a = -0.5, support [-2, 2]

// y = D_h x D_w^T per channel, D from bicubic_downsample_matrix: separable and explicit, so the
// adjoint D_h^T y D_w and the Moore-Penrose inverse D_h^+ y (D_w^+)^T are exact.
class BicubicDownsample : public LinearImageOperator {
 public:
  BicubicDownsample(const Shape& x_shape, int64_t factor);
  std::string name() const override { return "sr_bicubic"; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return {in_[0], in_[1] / s_, in_[2] / s_}; }
  at::Tensor forward(const at::Tensor& x) const override;
  at::Tensor adjoint(const at::Tensor& y) const override;
  bool has_pseudo_inverse() const override { return true; }
  at::Tensor pseudo_inverse(const at::Tensor& y) const override;

 private:
  Shape in_;
  int64_t s_;
  at::Tensor dh_, dw_, dh_pinv_, dw_pinv_;  // float64
};

}  // namespace psbench
