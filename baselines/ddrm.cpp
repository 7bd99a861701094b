// DDRM, denoising diffusion restoration models (Kawar, Elad, Ermon, Song; NeurIPS 2022), for a linear operator
// with Gaussian noise through its SVD view (operators/svd.h). In spectral coordinates x_bar = V^T x the
// measurement reads y_bar_i = x_bar_i + (sigma_y / s_i) eps_i on the r observed coordinates (y_bar = diag(s)^-1
// U^T y), and DDRM's reverse step from sigma to sigma' treats each coordinate by itself, with x0_hat = V^T D(x,
// sigma) (its eq. 7-8, written in the variance-exploding x_sigma its DDPM form rescales to):
//   unobserved (s_i = 0):          x'_i = x0_i + sqrt(1 - eta^2) sigma' (x_i - x0_i) / sigma + eta sigma' xi
//   sigma' <  sigma_y / s_i:       x'_i = x0_i + sqrt(1 - eta^2) sigma' (y_bar_i - x0_i) / (sigma_y / s_i)
//                                          + eta sigma' xi
//   sigma' >= sigma_y / s_i:       x'_i = (1 - eta_b) x0_i + eta_b y_bar_i
//                                          + sqrt(sigma'^2 - eta_b^2 sigma_y^2 / s_i^2) xi
// started from p(x_T | y): N(y_bar_i, sigma_T^2 - sigma_y^2 / s_i^2) on observed coordinates (N(0, sigma_T^2)
// where sigma_y / s_i > sigma_T, which the paper leaves out), N(0, sigma_T^2) elsewhere. The last step, to
// sigma' = 0, returns x0_hat on every coordinate the noise reaches. The paper: eta = 0.85, eta_b = 1, 20 steps
// skipping uniformly through the DDPM's 1000 levels; here the prior's Karras grid. One forward denoiser
// evaluation per step and sample, no gradient. Not a posterior sampler: on a Gaussian prior its output follows a
// closed-form law (tests/baselines/spectral_diffusion_test.cpp) that leans toward y_bar and under-disperses the
// observed coordinates (docs/BASELINES.md).
#include <cmath>

#include "baselines/reverse_diffusion.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct DdrmOptions {
  int64_t steps = 20;
  double eta = 0.85, eta_b = 1.0;
  double divergence_threshold = 1e4;
  NoiseGrid grid = NoiseGrid::Karras;
  double singular_floor = 0.0;
  static const OptionSchema<DdrmOptions>& schema() {
    static const auto s = [] {
      using O = DdrmOptions;
      OptionSchema<O> s;
      s.integer(&O::steps, "steps", 20, "S: reverse steps on the Karras grid (rho = 7) before 0 (the paper: 20)")
          .at_least(1);
      s.real(&O::eta, "eta", 0.85,
             "eta: fraction of fresh noise on the coordinates the measurement does not pin (the paper: 0.85)")
          .at_least(0)
          .at_most(1);
      s.real(&O::eta_b, "eta_b", 1.0,
             "eta_b: weight of y_bar against x0_hat on observed coordinates noisier than the measurement (the paper: 1)")
          .at_least(0)
          .at_most(1);
      add_divergence_threshold(s, &O::divergence_threshold);
      add_noise_grid(s, &O::grid);
      add_singular_floor(s, &O::singular_floor);
      return s;
    }();
    return s;
  }
};

class Ddrm : public DiffusionKernel {
 public:
  using Options = DdrmOptions;
  using State = DiffusionState;
  explicit Ddrm(Options o) : DiffusionKernel("ddrm", o.steps, o.divergence_threshold, o.grid, 1, o.singular_floor), o_(o) {}

  State init(const StepContext& ctx) const {
    State s = start(ctx, true);
    const auto& m = s.meas;
    if (m.r > 0) {
      // p(x_T | y) on observed coordinates: y_bar_i plus the noise that brings it from sigma_y / s_i to sigma_T.
      const double st = s.sigmas[0];
      auto xb = s.svd->vt(s.x.to(at::kDouble));
      auto obs = xb.narrow(1, 0, m.r);
      const auto reach = m.sigma <= st;
      const auto scale = (st * st - m.sigma.pow(2)).clamp_min(0).sqrt() / st;  // obs holds sigma_T z
      obs.copy_(at::where(reach, m.ybar + scale * obs, obs));
      s.x = s.svd->v(xb).to(s.x.scalar_type());
    }
    return s;
  }

  Step<State> step(State s, const StepContext& ctx) const {
    const double sig = s.sigmas[ctx.t], nxt = s.sigmas[ctx.t + 1];
    const auto sp = spectral(s, sig, ctx);
    const auto& m = s.meas;
    const auto &xb = sp.x, &x0b = sp.x0, &xi = sp.xi;
    const double keep = std::sqrt(1.0 - o_.eta * o_.eta);
    auto next = x0b + keep * nxt / sig * (xb - x0b) + o_.eta * nxt * xi;
    if (m.r > 0) {
      const auto x0o = x0b.narrow(1, 0, m.r), xio = xi.narrow(1, 0, m.r);
      // The branch not taken may divide by a zero noise level; where() drops it.
      const auto quieter = m.ybar - x0o;
      const auto below = x0o + keep * nxt * quieter / m.sigma + o_.eta * nxt * xio;
      const auto above = (1.0 - o_.eta_b) * x0o + o_.eta_b * m.ybar +
                         (nxt * nxt - o_.eta_b * o_.eta_b * m.sigma.pow(2)).clamp_min(0).sqrt() * xio;
      next.narrow(1, 0, m.r).copy_(at::where(nxt < m.sigma, below, above));
    }
    return from_spectral(std::move(s), next);
  }
  std::string divergence(const StepContext& ctx) const {
    return DiffusionKernel::divergence(ctx) + "; eta=" + format_value(o_.eta) + ", eta_b=" + format_value(o_.eta_b);
  }

 private:
  Options o_;
};

SamplerRegistrar reg_ddrm(kernel_entry<Ddrm>(
    "ddrm",
    "DDRM (Kawar et al. 2022): reverse diffusion in the operator's SVD coordinates, observed coordinates pulled to "
    "y_bar = diag(s)^-1 U^T y with their noise level sigma_y / s (linear A, Gaussian noise); one forward "
    "evaluation per step and run. Budget B per measurement: steps = floor(B / K)"));

}  // namespace
}  // namespace psbench
