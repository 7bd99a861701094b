#pragma once
// Blur operators (ALGORITHMS.md §8): Gaussian blur and motion blur, both a per-channel correlation
// with a fixed kernel over the boundary-extended (padded) image, as in the DPS code (a reflection pad
// followed by a bias-free depthwise Conv2d).
#include "operators/image_ops.h"

namespace psbench {

// Normalised 1-D Gaussian sampled at the integer offsets -k/2..k/2 (k odd): exp(-t^2 / (2 std^2)) / sum.
// Identical to scipy.ndimage's kernel with radius k/2 (truncate = (k/2) / std).
at::Tensor gaussian_kernel1d(int64_t size, double std);

// A random camera-shake kernel [k, k] (k odd), summing to 1, drawn from `gen` (float64). The
// trajectory is a unit-speed path whose heading performs a random walk with per-step standard
// deviation intensity * pi / 4 plus rare abrupt turns (probability intensity / 20 per step); it is
// centred on its mean point, scaled to fill the kernel's half-width, and rasterised with bilinear
// splatting of points spaced at most 1/4 pixel apart. intensity 0 gives a straight line across the
// kernel in a random direction.
at::Tensor motion_kernel(int64_t size, double intensity, at::Generator& gen);

// y = K ⋆ pad(x) per channel ("valid" correlation after padding by half the kernel), K odd-sized.
// The adjoint is pad^T (K ⋆^T y) with the transposed correlation and the folding adjoint of the
// padding: exact. Separable kernels run as two 1-D convolutions; other kernels (motion blur) through
// the DFT of the padded size, where the cropped circular correlation equals the valid one. The pseudo-inverse is the Tikhonov solution argmin ||A x - y||^2 + lambda ||x||^2
// of this exact (padded) operator, solved by conjugate gradients.
class ConvolutionBlur : public LinearImageOperator {
 public:
  // kernel2d [kh, kw]; if `separable_rows` and `separable_cols` are defined, kernel2d must equal their
  // outer product and the two 1-D passes are used (cheaper for large kernels).
  ConvolutionBlur(std::string name, const Shape& x_shape, at::Tensor kernel2d, Padding padding, double lambda,
                  at::Tensor separable_rows = {}, at::Tensor separable_cols = {});
  std::string name() const override { return name_; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return in_; }
  at::Tensor forward(const at::Tensor& x) const override;
  at::Tensor adjoint(const at::Tensor& y) const override;
  bool has_pseudo_inverse() const override { return true; }
  at::Tensor pseudo_inverse(const at::Tensor& y) const override;
  const at::Tensor& kernel() const { return kernel_; }  // float64 [kh, kw]
  // Separable kernels: A = R X C^T per channel with R [H, H], C [W, W] the 1-D padded correlations, so
  // U = U_R (x) U_C, V = V_R (x) V_C and s = s_R s_C from two 1-D SVDs (the boundary extension, reflect or
  // symmetric, is inside R and C). Other kernels: the dense SVD up to kMaxSvdSize pixels.
  bool has_svd() const override;
  std::shared_ptr<const SvdView> svd() const override;
  double tikhonov_lambda() const { return lambda_; }

 private:
  at::Tensor as_planes(const at::Tensor& t) const;  // [B, C, h, w] -> [B*C, 1, h, w]
  // rfft2 of the kernel zero-filled to [ph, pw], in the dtype and on the device of `like`.
  at::Tensor kernel_spectrum(int64_t ph, int64_t pw, const at::Tensor& like) const;
  std::string name_;
  Shape in_;
  at::Tensor kernel_, rows_, cols_;  // float64
  PaddedGrid grid_;
  double lambda_;
};

}  // namespace psbench
