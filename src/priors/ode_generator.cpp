#include "priors/ode_generator.h"

#include <cmath>

namespace psbench {

OdeGenerator::OdeGenerator(const Denoiser& denoiser, Shape shape, int64_t steps, double rho, StartMap start)
    : denoiser_(denoiser), shape_(std::move(shape)), steps_(steps), start_(std::move(start)) {
  sigmas_ = karras_sigmas(steps, denoiser.sigma_min(), denoiser.sigma_max(), rho);
}

at::Tensor OdeGenerator::integrate(at::Tensor x) const {
  const int64_t b = x.size(0);
  auto opts = x.options();
  auto slope = [&](const at::Tensor& xs, double sigma) {
    auto d = denoiser_.denoise(xs, at::full({b}, sigma, opts));
    return (xs - d) / sigma;  // dx/dsigma of the probability-flow ODE
  };
  for (int64_t i = 0; i < steps_; ++i) {
    const double s0 = sigmas_[i], s1 = sigmas_[i + 1];
    auto d0 = slope(x, s0);
    auto x_euler = x + (s1 - s0) * d0;
    if (s1 > 0) {
      auto d1 = slope(x_euler, s1);
      x = x + (s1 - s0) * 0.5 * (d0 + d1);
    } else {
      x = x_euler;
    }
  }
  return x;
}

at::Tensor integrate_pf_ode(const Denoiser& denoiser, at::Tensor x, const at::Tensor& sigma, int64_t steps,
                            double rho, bool heun) {
  auto sig = sigma.to(at::TensorOptions().dtype(x.scalar_type()).device(x.device())).reshape({x.size(0)});
  Shape bshape(static_cast<size_t>(x.dim()), 1);
  bshape[0] = x.size(0);
  // Row b's grid: s_i = (a_b + i/(steps-1) (c_b - a_b))^rho, a_b = sigma_b^(1/rho), c_b = min(sigma_min, sigma_b)^(1/rho).
  auto a = sig.pow(1.0 / rho);
  auto c = sig.clamp_max(denoiser.sigma_min()).pow(1.0 / rho);
  auto level = [&](int64_t i) {
    const double frac = steps == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(steps - 1);
    return (a + frac * (c - a)).pow(rho);
  };
  auto slope = [&](const at::Tensor& xs, const at::Tensor& s) {
    return (xs - denoiser.denoise(xs, s)) / s.reshape(bshape);
  };
  for (int64_t i = 0; i < steps; ++i) {
    auto s0 = level(i);
    const bool last = i == steps - 1;
    auto s1 = last ? at::zeros_like(s0) : level(i + 1);
    auto h = (s1 - s0).reshape(bshape);
    auto d0 = slope(x, s0);
    auto x_euler = x + h * d0;
    x = (last || !heun) ? x_euler : x + h * 0.5 * (d0 + slope(x_euler, s1));
  }
  return x;
}

at::Tensor OdeGenerator::generate(const at::Tensor& z) const { return integrate(start_(z)); }

}  // namespace psbench
