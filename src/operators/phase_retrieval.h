#pragma once
// Fourier phase retrieval (ALGORITHMS.md §8): y = |F(pad(x))|, F the centred orthonormal 2-D DFT
// (fftshift ∘ fft2(norm="ortho") ∘ ifftshift, as DPS's fft2c) of the image zero-padded by p pixels on
// every side, per channel. Nonlinear; invariant to x -> -x and to the 180-degree rotation of x
// (docs/tasks.md works out why).
#include "operators/image_ops.h"

namespace psbench {

class PhaseRetrieval : public Operator {
 public:
  PhaseRetrieval(const Shape& x_shape, int64_t pad);
  std::string name() const override { return "phase_retrieval"; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return {in_[0], in_[1] + 2 * pad_, in_[2] + 2 * pad_}; }
  at::Tensor forward(const at::Tensor& x) const override;
  bool is_linear() const override { return false; }
  int64_t pad() const { return pad_; }
  // Zero-padding and the orthonormal DFT are isometries and | | is 1-Lipschitz per entry: L = 1.
  double lipschitz() const override { return 1.0; }

 private:
  Shape in_;
  int64_t pad_;
};

// DPS's convention: pad = round(oversampling * side / 8) per side (oversampling 2 -> 64 at 256).
int64_t phase_retrieval_pad(double oversampling, int64_t side);

}  // namespace psbench
