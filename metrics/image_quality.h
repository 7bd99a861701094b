#pragma once
// Full-reference image quality (ALGORITHMS.md §9): PSNR and SSIM of images in [-1, 1], computed on the
// rescaled images (x + 1) / 2 with data range 1.
#include <ATen/ATen.h>

namespace psbench {

// a [N, C, H, W], b [N or 1, C, H, W] -> [N] float64; +inf where the images are identical.
at::Tensor psnr(const at::Tensor& a, const at::Tensor& b);

// The reference SSIM (Wang et al. 2004; skimage.metrics.structural_similarity with gaussian_weights=True,
// sigma=1.5, use_sample_covariance=False, data_range=1): 11x11 Gaussian window (sigma 1.5, truncated at
// radius 5, normalised), K1 = 0.01, K2 = 0.03, local statistics over the window positions that fit
// inside the image, mean over positions and channels. Images need at least 11x11 pixels.
at::Tensor ssim(const at::Tensor& a, const at::Tensor& b);

}  // namespace psbench
