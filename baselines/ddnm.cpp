// DDNM and DDNM+, denoising diffusion null-space models (Wang, Yu, Zhang; ICLR 2023), for a linear operator with
// Gaussian noise through its SVD view (operators/svd.h). Range-null-space decomposition: the denoiser's
// x0_hat = D(x, sigma) keeps its null-space part and has its range part replaced by the measurement's,
//   x0_c = x0_hat - Sigma A^+ (A x0_hat - y),  i.e. x0_c,i = (1 - lambda_i) x0_i + lambda_i y_bar_i
// in spectral coordinates (observed ones; y_bar_i = (U^T y)_i / s_i, of noise level sigma_y / s_i). DDNM
// replaces outright (lambda = 1). DDNM+ (its eq. 17-19) scales the replacement so that the measurement noise it
// carries into the next state stays within the step's own noise, lambda_i = min(1, tau / (c sigma_y / s_i)), and
// draws only the rest, tau^2 - (c lambda_i sigma_y / s_i)^2, fresh; c is x0_c's coefficient in the next state
// and tau the step's noise level.
// The step, in the variance-exploding x_sigma, comes in two forms:
//   convention code (the authors' code, eta = 0.85):  x' = x0_c + sqrt(1 - eta^2) sigma' (x - x0_hat) / sigma
//       + tau xi, tau = eta sigma', c = 1 (the noise estimate is the network's, before the correction);
//   convention paper (Algorithm 2, the DDPM posterior):  x' = a x + (1 - a) x0_c + tau xi, a = sigma'^2 /
//       sigma^2, tau^2 = sigma'^2 (1 - a), c = 1 - a.
// The last step, to sigma' = 0, returns x0_c (DDNM: the measurement's range part exactly; DDNM+: x0_hat where
// the measurement is noisy). The paper's time-travel trick (going back l steps and redoing them) is not
// implemented. One forward denoiser evaluation per step and sample, no gradient. Not a posterior sampler: on a
// Gaussian prior its output follows a closed-form law (tests/baselines/spectral_diffusion_test.cpp) that
// collapses onto y_bar on observed coordinates.
#include <cmath>

#include "baselines/reverse_diffusion.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct DdnmOptions {
  enum class Convention { Code, Paper };
  int64_t steps = 100;
  double eta = 0.85;
  Convention convention = Convention::Code;
  double divergence_threshold = 1e4;
  NoiseGrid grid = NoiseGrid::Karras;
  double singular_floor = 0.0;
  bool plus = false;  // set by the registry entry, not an option
  static const OptionSchema<DdnmOptions>& schema() {
    static const auto s = [] {
      using O = DdnmOptions;
      OptionSchema<O> s;
      s.integer(&O::steps, "steps", 100, "S: reverse steps on the Karras grid (rho = 7) before 0 (the paper: 100)")
          .at_least(1);
      s.real(&O::eta, "eta", 0.85,
             "eta (convention code): fraction of fresh noise in each step, the rest the network's noise estimate "
             "(the authors' code: 0.85)")
          .at_least(0)
          .at_most(1);
      s.choice(&O::convention, "convention", O::Convention::Code,
               {{"code", O::Convention::Code}, {"paper", O::Convention::Paper}},
               "code: the authors' eta step x0_c + sigma' (sqrt(1 - eta^2) eps_hat + eta xi); paper: the DDPM "
               "posterior step a x + (1 - a) x0_c + sqrt(sigma'^2 (1 - a)) xi, a = sigma'^2 / sigma^2 (eta unused)");
      add_divergence_threshold(s, &O::divergence_threshold);
      add_noise_grid(s, &O::grid);
      add_singular_floor(s, &O::singular_floor);
      return s;
    }();
    return s;
  }
};

class Ddnm : public DiffusionKernel {
 public:
  using Options = DdnmOptions;
  using State = DiffusionState;
  Ddnm(std::string name, Options o) : DiffusionKernel(std::move(name), o.steps, o.divergence_threshold, o.grid, 1, o.singular_floor), o_(o) {}


  Step<State> step(State s, const StepContext& ctx) const {
    const double sig = s.sigmas[ctx.t], nxt = s.sigmas[ctx.t + 1];
    const auto sp = spectral(s, sig, ctx);
    const auto& m = s.meas;
    const auto &xb = sp.x, &x0b = sp.x0;
    const bool paper = o_.convention == Options::Convention::Paper;
    const double a = nxt * nxt / (sig * sig);
    const double tau = paper ? nxt * std::sqrt(1.0 - a) : o_.eta * nxt, c = paper ? 1.0 - a : 1.0;
    // x0_c, and the fresh noise level of each coordinate: tau off the range.
    auto x0c = x0b.clone();
    auto fresh = at::full({x0b.size(1)}, tau, x0b.options());
    if (m.r > 0) {
      at::Tensor lambda = at::ones({m.r}, x0b.options());
      if (o_.plus) {
        const auto carried = c * m.sigma;  // the measurement noise x0_c would carry into x', at lambda = 1
        lambda = at::where(carried <= tau, lambda, tau / carried);
        fresh.narrow(0, 0, m.r).copy_((tau * tau - (lambda * carried).pow(2)).clamp_min(0).sqrt());
      }
      auto obs = x0c.narrow(1, 0, m.r);
      obs.copy_((1.0 - lambda) * obs + lambda * m.ybar);
    }
    const auto mean = paper ? a * xb + (1.0 - a) * x0c : x0c + std::sqrt(1.0 - o_.eta * o_.eta) * nxt / sig * (xb - x0b);
    return from_spectral(std::move(s), mean + fresh * sp.xi);
  }
  std::string divergence(const StepContext& ctx) const {
    return DiffusionKernel::divergence(ctx) + "; eta=" + format_value(o_.eta);
  }

 private:
  Options o_;
};

SamplerRegistry::Entry ddnm_entry(const std::string& name, bool plus, const std::string& description) {
  return kernel_entry<Ddnm>(name, description, DdnmOptions::schema(), [name, plus](DdnmOptions o) {
    o.plus = plus;
    return Ddnm(name, o);
  });
}

SamplerRegistrar reg_ddnm(ddnm_entry(
    "ddnm", false,
    "DDNM (Wang et al. 2023): reverse diffusion whose x0 estimate has its range-space part replaced by A^+ y (through "
    "the operator's SVD; linear A); one forward evaluation per step and run. Budget B per measurement: steps = "
    "floor(B / K)"));
SamplerRegistrar reg_ddnm_plus(ddnm_entry(
    "ddnm_plus",
    true,
    "DDNM+ (Wang et al. 2023): DDNM with the replacement scaled so that the measurement noise it carries stays "
    "within each step's noise (noisy y); one forward evaluation per step and run. Budget B per measurement: steps "
    "= floor(B / K)"));

}  // namespace
}  // namespace psbench
