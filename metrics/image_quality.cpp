// psnr and ssim: per-sample metrics against x*, samples clipped to [-1, 1] (the displayable image)
// before scoring.
#include "metrics/image_quality.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "metrics/metric.h"

namespace psbench {

namespace {

void check_pair(const at::Tensor& a, const at::Tensor& b, const char* what) {
  if (a.dim() != 4 || b.dim() != 4 || a.sizes().slice(1) != b.sizes().slice(1) ||
      (b.size(0) != a.size(0) && b.size(0) != 1))
    throw std::invalid_argument(std::string(what) + ": expects images [N, C, H, W] and [N or 1, C, H, W] of equal size");
}

// Normalised 1-D Gaussian taps, sigma 1.5, radius 5 (scipy's truncate = 3.5 gives the same 11 taps).
at::Tensor gaussian_taps() {
  std::vector<double> w(11);
  double sum = 0;
  for (int i = 0; i < 11; ++i) sum += (w[i] = std::exp(-0.5 * (i - 5) * (i - 5) / (1.5 * 1.5)));
  for (auto& v : w) v /= sum;
  return at::tensor(w, at::TensorOptions().dtype(at::kDouble));
}

// Separable "valid" Gaussian filter of [P, 1, H, W] -> [P, 1, H - 10, W - 10].
at::Tensor window_mean(const at::Tensor& x, const at::Tensor& taps) {
  auto h = at::conv2d(x, taps.view({1, 1, 1, 11}));
  return at::conv2d(h, taps.view({1, 1, 11, 1}));
}

}  // namespace

at::Tensor psnr(const at::Tensor& a, const at::Tensor& b) {
  check_pair(a, b, "psnr");
  auto ua = (a.to(at::kDouble) + 1) / 2, ub = (b.to(at::kDouble) + 1) / 2;
  auto mse = (ua - ub).pow(2).flatten(1).mean(1);
  // 10 log10(1 / mse): log10(0) = -inf gives +inf for identical images, never NaN.
  return -10.0 * at::log10(mse);
}

at::Tensor ssim(const at::Tensor& a, const at::Tensor& b) {
  check_pair(a, b, "ssim");
  if (a.size(2) < 11 || a.size(3) < 11) throw std::invalid_argument("ssim: images need at least 11x11 pixels");
  // In chunks of 64 images: the float64 temporaries of one large batch exceed the allocator's mmap
  // threshold and page-fault on every call (1000 pairs: 7x slower per pair; docs/PERFORMANCE.md, 3).
  constexpr int64_t kChunk = 64;
  if (a.size(0) > kChunk) {
    std::vector<at::Tensor> parts;
    for (int64_t i = 0; i < a.size(0); i += kChunk) {
      const int64_t end = std::min(a.size(0), i + kChunk);
      parts.push_back(ssim(a.slice(0, i, end), b.size(0) == 1 ? b : b.slice(0, i, end)));
    }
    return at::cat(parts);
  }
  const int64_t n = a.size(0), c = a.size(1), h = a.size(2), w = a.size(3);
  auto x = ((a.to(at::kDouble) + 1) / 2).reshape({n * c, 1, h, w});
  auto y = ((b.to(at::kDouble) + 1) / 2).expand_as(a).reshape({n * c, 1, h, w});
  const auto taps = gaussian_taps();
  auto mx = window_mean(x, taps), my = window_mean(y, taps);
  auto vx = window_mean(x * x, taps) - mx * mx;
  auto vy = window_mean(y * y, taps) - my * my;
  auto cxy = window_mean(x * y, taps) - mx * my;
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;  // (K L)^2 with data range L = 1
  auto map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  return map.reshape({n, -1}).mean(1);
}

namespace {

class ImageQuality : public Metric {
 public:
  ImageQuality(bool is_ssim, const Options& o) : ssim_(is_ssim), best_(o.get_bool("best_of_k")) {}
  bool lower_is_better() const override { return false; }
  MetricLevel level() const override { return MetricLevel::PerSample; }
  bool best_of_k() const override { return best_; }
  std::string unsupported(const MetricContext& c) const override { return image_shape_problem(c.data_shape, ssim_ ? 11 : 1); }
  at::Tensor per_sample(const MetricInput& in, const at::Tensor& images) const override {
    auto x = images.clamp(-1, 1);
    auto ref = in.x_true.unsqueeze(0);
    return ssim_ ? ssim(x, ref) : psnr(x, ref);
  }

 private:
  bool ssim_, best_;
};

std::vector<OptionSpec> quality_options() {
  return {OptionSpec::boolean("best_of_k", false,
                              "also store the best of the K samples (selected against x*) as <name>@best_of_k")};
}

MetricRegistrar reg_psnr({"psnr",
                          "PSNR (dB) to x* of samples clipped to [-1, 1], on (x+1)/2 with data range 1; mean over "
                          "samples, +inf for an exact match",
                          quality_options(), [](const Options& o) { return std::make_unique<ImageQuality>(false, o); }});
MetricRegistrar reg_ssim({"ssim",
                          "SSIM to x* (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, data range 1 on (x+1)/2) of "
                          "samples clipped to [-1, 1]; mean over samples",
                          quality_options(), [](const Options& o) { return std::make_unique<ImageQuality>(true, o); }});

}  // namespace
}  // namespace psbench
