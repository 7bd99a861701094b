#pragma once
// Inpainting operators (ALGORITHMS.md §8): y = M ⊙ x with a 0/1 pixel mask M shared over channels.
// The output keeps the image shape (unobserved pixels are 0 in A(x); the noise model still adds noise
// there, which carries no information about x because those rows of A are zero). A is an orthogonal
// projection, so A^T = A and the Moore-Penrose inverse is A as well (unobserved pixels filled with 0,
// mid-grey).
#include "operators/image_ops.h"

namespace psbench {

class MaskOperator : public LinearImageOperator {
 public:
  // mask: [H, W], 1 = observed.
  MaskOperator(std::string name, const Shape& x_shape, at::Tensor mask);
  std::string name() const override { return name_; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return in_; }
  at::Tensor forward(const at::Tensor& x) const override;
  at::Tensor adjoint(const at::Tensor& y) const override { return forward(y); }
  bool has_pseudo_inverse() const override { return true; }
  at::Tensor pseudo_inverse(const at::Tensor& y) const override { return forward(y); }
  const at::Tensor& mask() const { return mask_; }  // float64 [H, W]
  at::Tensor output_support() const override { return mask_.expand({in_[0], in_[1], in_[2]}); }
  // U = V = the permutation putting observed pixels first; s = 1 on them.
  bool has_svd() const override { return true; }
  std::shared_ptr<const SvdView> svd() const override;

 private:
  std::string name_;
  Shape in_;
  at::Tensor mask_;
};

// Exactly round(observed * H * W) pixels observed (at least one), chosen uniformly without replacement.
at::Tensor random_pixel_mask(int64_t h, int64_t w, double observed, at::Generator& gen);
// A box x box hole whose top-left corner is uniform on [margin, H - margin - box] x [margin, W - margin - box].
at::Tensor random_box_mask(int64_t h, int64_t w, int64_t box, int64_t margin, at::Generator& gen);

}  // namespace psbench
