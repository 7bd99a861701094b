#pragma once
// High dynamic range reconstruction (ALGORITHMS.md §8): y = clip(scale * x, -1, 1). Nonlinear.
#include "operators/image_ops.h"

namespace psbench {

class HdrClip : public Operator {
 public:
  HdrClip(const Shape& x_shape, double scale) : in_(x_shape), scale_(scale) {}
  std::string name() const override { return "hdr"; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return in_; }
  at::Tensor forward(const at::Tensor& x) const override { return at::clamp(x * scale_, -1.0, 1.0); }
  bool is_linear() const override { return false; }
  // y / scale: the exact inverse wherever the measurement did not clip.
  bool has_pseudo_inverse() const override { return true; }
  at::Tensor pseudo_inverse(const at::Tensor& y) const override { return y / scale_; }
  double scale() const { return scale_; }
  // clip is 1-Lipschitz: L = scale, reached wherever scale x is inside (-1, 1).
  double lipschitz() const override { return scale_; }

 private:
  Shape in_;
  double scale_;
};

}  // namespace psbench
