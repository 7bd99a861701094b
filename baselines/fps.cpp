// FPS, filtering posterior sampling (Dou and Song, ICLR 2024; "FPS-SMC"): a particle filter along the reverse
// diffusion whose observations are a sequence y_sigma of measurements noised forward, for a linear operator with
// Gaussian noise, in the spectral coordinates of the operator's SVD (operators/svd.h). With y_tilde = U^T y,
// singular values s_i and the variance-exploding (EDM) process x_sigma = x0 + sigma eps, FPS sets
//   y_sigma = y + sigma A eps,  i.e.  y_tilde_sigma,i = s_i x_bar_sigma,i + sigma_y n_i,
// and treats the levels as a state-space model with emissions N(y_tilde_sigma,i; s_i x_bar_sigma,i, sigma_y^2)
// (the variance-preserving paper's alpha_bar_t sigma^2, rescaled). A run first draws its own y sequence down
// the grid with the process's bridge (the paper's "backward generation" of y, DDPM bridge, c = 1):
//   y_tilde_sigma0 = y_tilde + sigma_0 s eps,
//   y_tilde_sigma' = y_tilde + a (y_tilde_sigma - y_tilde) + s sqrt(v) xi,  a = sigma'^2 / sigma^2,
//                                                                      v = sigma'^2 (1 - a),
// ending at y_tilde itself at sigma = 0. Its particles follow the prior's ancestral kernel
// p(x' | x) = N(m, v I), m = a x + (1 - a) D(x, sigma), fully adapted to the next observation:
//   log w += sum_i log N(y_tilde_sigma',i; s_i m_i, s_i^2 v + sigma_y^2)   (the paper's eq. 13),
//   resample ancestors when ESS < resample_ess * P (the paper: at every step), then the Kalman update
//   x_bar'_i = m_i + K_i (y_tilde_sigma',i / s_i - m_i) + sqrt((1 - K_i) v) xi,  K_i = s_i^2 v / (s_i^2 v + sigma_y^2),
// and x_bar'_j = m_j + sqrt(v) xi off the range of A^T. Start: x_bar from N(0, sigma_0^2 I) conditioned on
// y_tilde_sigma0 (Kalman), equal weights. A run's samples are draws from its final weighted particles.
//
// Not exact for noisy measurements: the emissions of successive levels share one noise n (y_sigma - A x_sigma =
// y - A x0 at every level), but the filter counts them as independent observations, so the likelihood is
// over-counted and the more levels, the narrower the output (a 1-D Gaussian prior N(0, 1), y = 1.5, sigma_y = 0.5:
// exact posterior mean 1.2, variance 0.2; FPS's limit in P has variance 0.06 at 10 levels and 0.02 at 50, mean
// drifting to y). tests/baselines/smc_test.cpp pins this limit in closed form. Each level costs P forward
// denoiser evaluations per run (no gradient).
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "baselines/smc.h"
#include "nn/karras.h"
#include "operators/svd.h"
#include "samplers/chain_util.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct FpsOptions {
  int64_t steps = 100;
  SmcOptions smc;
  static const OptionSchema<FpsOptions>& schema() {
    static const auto s = [] {
      using O = FpsOptions;
      OptionSchema<O> s;
      s.integer(&O::steps, "steps", 100, "S: noise levels of the Karras grid (rho = 7) before 0; one denoiser call per particle each")
          .at_least(1);
      s.group(&O::smc, SmcOptions::schema());
      return s;
    }();
    return s;
  }
};

class Fps : public SmcKernel {
 public:
  using Options = FpsOptions;
  struct State {
    at::Tensor xbar;    // [B, P, n]: the particles' spectral coordinates V^T x at the current level
    at::Tensor logw;    // [B, P] float64
    at::Tensor yseq;    // [B, r] float64: the run's observation y_tilde_sigma at the current level
    at::Tensor out;     // [B, J, *data]: the run's samples, after the last step
    std::shared_ptr<const SvdView> svd;
    at::Tensor ytilde, sv;  // [r] float64: U^T y on the range, singular values
    double sigma_y2 = 0;
    std::vector<double> sigmas;
    double sigma_data = 0.5;
    void keep_rows(const at::Tensor& rows) {
      xbar = keep_defined_rows(xbar, rows);
      logw = keep_defined_rows(logw, rows);
      yseq = keep_defined_rows(yseq, rows);
      out = keep_defined_rows(out, rows);
    }
  };
  explicit Fps(Options o) : SmcKernel("fps", o.steps, o.smc), o_(o) {}

  Needs needs() const { return {.denoiser = true, .svd = true}; }

  State init(const StepContext& ctx) const {
    const auto& den = ctx.problem.denoiser("fps");
    State s;
    s.sigmas = reverse_sigmas(o_.smc.grid, o_.steps, den, "fps");
    s.sigma_data = den.sigma_data();
    s.svd = ctx.problem.op().svd();
    s.sv = s.svd->singular_values().to(at::kDouble);
    const int64_t r = s.svd->rank();
    s.ytilde = s.svd->ut(ctx.problem.y().to(at::kDouble))[0].narrow(0, 0, r);
    s.sigma_y2 = ctx.problem.noise().sigma_y * ctx.problem.noise().sigma_y;
    const int64_t n = numel(ctx.problem.prior().data_shape());
    const double s0 = s.sigmas[0];
    s.yseq = s.ytilde + s0 * s.sv * ctx.rng.normal({r}).to(at::kDouble);  // [B, r]
    auto z = ctx.rng.normal({o_.smc.particles, n});                       // [B, P, n]
    auto x = (s0 * z).to(at::kDouble);
    if (r > 0) {
      const auto k = kalman_gain(s, s0 * s0);
      x.narrow(2, 0, r).copy_(k * (s.yseq / s.sv).unsqueeze(1) +
                              ((1.0 - k) * s0 * s0).sqrt() * z.narrow(2, 0, r).to(at::kDouble));
    }
    s.xbar = x.to(z.scalar_type());
    s.logw = at::zeros({z.size(0), o_.smc.particles}, at::TensorOptions().dtype(at::kDouble));
    return s;
  }

  Step<State> step(State s, const StepContext& ctx) const {
    at::NoGradGuard no_grad;
    const double sig = s.sigmas[ctx.t], sig_next = s.sigmas[ctx.t + 1];
    const int64_t b = s.xbar.size(0), p = s.xbar.size(1), n = s.xbar.size(2), r = s.svd->rank();
    const auto dtype = s.xbar.scalar_type();
    auto [m, var] = smc_spectral_move(s.xbar, *s.svd, sig, sig_next, ctx);  // [B, P, n], v
    const double a = sig_next * sig_next / (sig * sig);
    // The run's next observation, drawn before anything depends on its particles.
    s.yseq = s.ytilde + a * (s.yseq - s.ytilde) + std::sqrt(var) * s.sv * ctx.rng.normal({r}).to(at::kDouble);
    Step<State> out;
    if (r > 0) {
      const auto pred_var = s.sv.pow(2) * var + s.sigma_y2;  // [r]
      const auto resid = s.yseq.unsqueeze(1) - s.sv * m.narrow(2, 0, r);
      s.logw = s.logw + (-0.5 * resid.pow(2) / pred_var - 0.5 * (2.0 * M_PI * pred_var).log()).sum(2);
    }
    m = smc_gather(m, smc_resample(s.logw, o_.smc, ctx.rng, out.info));

    auto xi = ctx.rng.normal({p, n}).to(at::kDouble);
    auto next = m + std::sqrt(var) * xi;
    if (r > 0) {
      const auto k = kalman_gain(s, var);  // [r]
      auto mr = m.narrow(2, 0, r);
      next.narrow(2, 0, r).copy_(mr + k * ((s.yseq / s.sv).unsqueeze(1) - mr) +
                                 ((1.0 - k) * var).sqrt() * xi.narrow(2, 0, r));
    }
    s.xbar = next.to(dtype);
    smc_drop_runaways(s.logw, s.xbar, o_.smc, sig_next, s.sigma_data);
    if (ctx.t + 1 == o_.steps)
      s.out = smc_as_samples(s.svd->v(smc_final_draws(s.xbar, s.logw, o_.smc, ctx.rng, out.info)), b,
                             ctx.problem.prior());
    out.state = std::move(s);
    return out;
  }

 private:
  // K_i = s_i^2 v / (s_i^2 v + sigma_y^2) [r]: the gain of a prior variance v against the emission.
  static at::Tensor kalman_gain(const State& s, double v) {
    const auto sv2 = s.sv.pow(2) * v;
    return sv2 / (sv2 + s.sigma_y2);
  }
  Options o_;
};

SamplerRegistrar reg_fps(kernel_entry<Fps>(
    "fps",
    "FPS (filtering posterior sampling, Dou and Song 2024): a particle filter of P particles along the reverse "
    "diffusion whose observations are y noised forward down the grid, with exact Kalman updates in the operator's "
    "SVD coordinates (needs the SVD view; linear A, Gaussian noise). Not exact for sigma_y > 0: it counts the "
    "levels' shared noise as independent. K / samples_per_run runs per measurement, P denoiser calls per level. "
    "Budget B per measurement: S = floor(B / (runs x P)) levels"));

}  // namespace
}  // namespace psbench
