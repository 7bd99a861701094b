// Phase retrieval task `phase_retrieval` (ALGORITHMS.md §8; docs/tasks.md).
#include "operators/phase_retrieval.h"

#include <cmath>

namespace psbench {

PhaseRetrieval::PhaseRetrieval(const Shape& x_shape, int64_t pad) : in_(x_shape), pad_(pad) {}

at::Tensor PhaseRetrieval::forward(const at::Tensor& x) const {
  auto padded = at::constant_pad_nd(x, {pad_, pad_, pad_, pad_}, 0.0);
  const std::vector<int64_t> dims{-2, -1};
  auto spectrum = at::fft_fftshift(at::fft_fft2(at::fft_ifftshift(padded, dims), c10::nullopt, dims, "ortho"), dims);
  return spectrum.abs();
}

int64_t phase_retrieval_pad(double oversampling, int64_t side) {
  return std::llround(oversampling * static_cast<double>(side) / 8.0);
}

namespace {

class PhaseRetrievalTask : public Task {
 public:
  explicit PhaseRetrievalTask(const Options& o)
      : oversampling_(o.get_real("oversampling")), sigma_y_(checked_sigma_y("phase_retrieval", o)) {
    if (!(oversampling_ >= 0) || !std::isfinite(oversampling_))
      throw ConfigError(task_context("phase_retrieval") + "oversampling=" + format_value(oversampling_) +
                        " must be a finite number >= 0");
  }
  MeasurementModel build(const Shape& x_shape, at::Generator&) const override {
    check_image_shape("phase_retrieval", x_shape);
    MeasurementModel m;
    m.op = std::make_unique<PhaseRetrieval>(x_shape,
                                            phase_retrieval_pad(oversampling_, std::min(x_shape[1], x_shape[2])));
    m.noise.sigma_y = sigma_y_;
    return m;
  }

 private:
  double oversampling_, sigma_y_;
};

TaskRegistrar reg_phase_retrieval(
    {"phase_retrieval",
     "Fourier phase retrieval: magnitude of the centred orthonormal 2-D DFT of the zero-padded image (nonlinear)",
     {OptionSpec::real("oversampling", 2.0,
                       "DPS's oversampling: zero padding of round(oversampling * side / 8) pixels per side "
                       "(2 -> 64 at 256, 7 at 28; the padded side is (1 + oversampling / 4) times the image side)")
          .at_least(0),
      sigma_y_option()},
     [](const Options& o) { return std::make_unique<PhaseRetrievalTask>(o); }});

}  // namespace
}  // namespace psbench
