// MCGdiff (Cardoso, Janati El Idrissi, Le Corff, Moulines; ICLR 2024): sequential Monte Carlo along the
// reverse diffusion for a linear measurement with Gaussian noise, in the spectral coordinates of the
// operator's SVD (operators/svd.h): x_bar = V^T x, and for the r observed coordinates
//   y_bar_i = (U^T y)_i / s_i = x_bar0_i + tau_i eps_i,   tau_i = sigma_y / s_i.
// Under the variance-exploding (EDM) forward process x_sigma = x0 + sigma eps, y_bar_i has the law of the
// i-th coordinate of the diffusion at level tau_i given x0, so the posterior is the law of x0 given
// x_bar_{tau_i, i} = y_bar_i (the paper's coupling). On the Karras grid (steps levels, then 0) let rho_i be the
// first level at or below tau_i (level k_i). The particles are guided by the potentials
//   g_{k,i}(x) = N(y_bar_i; x_bar_i, sigma_k^2 - tau_i^2 + kappa)   for k < k_i  (y noised forward to sigma_k),
//   g_{k_i,i}(x) = N(y_bar_i; x_bar_i, tau_i^2 - rho_i^2 + kappa)   at k_i: the forward transition from rho_i
//                                                                   to tau_i, i.e. the coupling's likelihood,
// and after level k_i coordinate i follows the prior without guidance or weight. So the weighted particles
// target the prior chain conditioned on x_bar_{tau_i, i} = y_bar_i (exact as P grows, up to kappa and the
// grid's kernel) whatever the grid: tau_i needs no snapping to a level. kappa keeps the potentials near
// sigma = tau_i from being point masses, as the paper's kappa does.
//
// A step sigma -> sigma' takes the prior's ancestral kernel
//   p(x' | x) = N(m, v I),  m = a x + (1 - a) D(x, sigma),  a = sigma'^2 / sigma^2,  v = sigma'^2 (1 - a),
// fully adapted (the weight depends only on the ancestor; the proposal is the kernel times g'): over the
// coordinates still guided at sigma' (k + 1 <= k_i),
//   log w += sum_i log N(y_bar_i; m_i, v + c'_i) - log N(y_bar_i; x_bar_i, c_i),
//   resample ancestors when ESS < resample_ess * P, then
//   x_bar'_i = K_i y_bar_i + (1 - K_i) m_i + sqrt(K_i c'_i) xi,  K_i = v / (v + c'_i),
// and x_bar'_j = m_j + sqrt(v) xi for every other coordinate. Start: x_bar from N(0, sigma_max^2 I) times the
// first potentials (the noised prior is taken as N(0, sigma_max^2 I) there, as every diffusion sampler's
// start is), equal weights. A run's samples are samples_per_run draws from its final weighted particles.
//
// Guiding all the way to sigma = 0 and weighting by the likelihood at the end instead (the paper's code
// ends with such a reweighting) is also exact in the limit, but its weights degenerate: on a 1-D Gaussian
// with tau = 3 importance weights over 4e5 paths kept an effective sample size of 3. Each step costs P
// forward denoiser evaluations per run (no gradient).
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <limits>

#include "baselines/smc.h"
#include "nn/karras.h"
#include "operators/svd.h"
#include "samplers/chain_util.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct McgdiffOptions {
  int64_t steps = 100;
  double kappa = 1e-4;
  SmcOptions smc;
  static const OptionSchema<McgdiffOptions>& schema() {
    static const auto s = [] {
      using O = McgdiffOptions;
      OptionSchema<O> s;
      s.integer(&O::steps, "steps", 100, "S: noise levels of the Karras grid (rho = 7) before 0; one denoiser call per particle each")
          .at_least(1);
      s.real(&O::kappa, "kappa", 1e-4,
             "variance added to the guiding potentials (the paper's kappa), so that none is a point mass at sigma = tau_i")
          .above(0);
      s.group(&O::smc, SmcOptions::schema());
      return s;
    }();
    return s;
  }
};

class Mcgdiff : public SmcKernel {
 public:
  using Options = McgdiffOptions;
  struct State {
    at::Tensor xbar;  // [B, P, n]: the particles' spectral coordinates V^T x at the current level
    at::Tensor logw;  // [B, P] float64
    at::Tensor out;   // [B, J, *data]: the run's samples, after the last step
    std::shared_ptr<const SvdView> svd;
    at::Tensor ybar, tau2;  // [r] float64
    at::Tensor last_level;  // [r] int64: k_i, the last level coordinate i is guided at
    std::vector<double> sigmas;
    double sigma_data = 0.5;
    void keep_rows(const at::Tensor& rows) {
      xbar = keep_defined_rows(xbar, rows);
      logw = keep_defined_rows(logw, rows);
      out = keep_defined_rows(out, rows);
    }
  };
  explicit Mcgdiff(Options o) : SmcKernel("mcgdiff", o.steps, o.smc), o_(o) {}

  Needs needs() const { return {.denoiser = true, .svd = true}; }

  State init(const StepContext& ctx) const {
    const auto& den = ctx.problem.denoiser("mcgdiff");
    State s;
    s.sigmas = reverse_sigmas(o_.smc.grid, o_.steps, den, "mcgdiff");
    s.sigma_data = den.sigma_data();
    s.svd = ctx.problem.op().svd();
    const auto sv = s.svd->singular_values().to(at::kDouble);
    const int64_t r = s.svd->rank();
    const auto yu = s.svd->ut(ctx.problem.y().to(at::kDouble))[0];
    s.ybar = yu.narrow(0, 0, r) / sv;
    const double sigma_y = ctx.problem.noise().sigma_y;
    s.tau2 = (sigma_y / sv).pow(2);
    // k_i: the first grid level at or below tau_i (the grid ends at 0, so there is one).
    std::vector<int64_t> last(static_cast<size_t>(r));
    const auto tau2 = s.tau2.contiguous();
    for (int64_t i = 0; i < r; ++i) {
      const double t2 = tau2[i].item<double>();
      int64_t k = 0;
      while (s.sigmas[k] * s.sigmas[k] > t2) ++k;
      last[static_cast<size_t>(i)] = k;
    }
    s.last_level = at::tensor(last, at::TensorOptions().dtype(at::kLong));
    const int64_t n = numel(ctx.problem.prior().data_shape());
    const double sT = s.sigmas[0];
    auto z = ctx.rng.normal({o_.smc.particles, n});  // [B, P, n]
    auto x = (sT * z).to(at::kDouble);
    if (r > 0) {
      // Every coordinate has a potential at the first level (k_i >= 0).
      const auto c = potential_variance(s, 0);
      const auto k = (sT * sT) / (sT * sT + c);
      x.narrow(2, 0, r).copy_(k * s.ybar + (k * c).sqrt() * z.narrow(2, 0, r).to(at::kDouble));
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
    auto xb = s.xbar.to(at::kDouble);
    Step<State> out;
    // Coordinates still guided at the next level; the others' potentials no longer change (weight 1).
    const auto guided = (s.last_level >= ctx.t + 1).to(at::kDouble);  // [r]
    const auto c_next = potential_variance(s, ctx.t + 1).clamp_max(1e300);  // free coordinates: finite, masked
    if (r > 0) {
      const auto c_now = potential_variance(s, ctx.t).clamp_max(1e300);
      auto inc = guided * (log_normal_each(s.ybar, m.narrow(2, 0, r), var + c_next) -
                           log_normal_each(s.ybar, xb.narrow(2, 0, r), c_now));
      s.logw = s.logw + inc.sum(2);
    }
    m = smc_gather(m, smc_resample(s.logw, o_.smc, ctx.rng, out.info));

    auto xi = ctx.rng.normal({p, n}).to(at::kDouble);
    auto next = m + std::sqrt(var) * xi;
    if (r > 0) {
      const auto k = guided * var / (var + c_next);  // 0 for free coordinates: the prior kernel
      next.narrow(2, 0, r).copy_(k * s.ybar + (1.0 - k) * m.narrow(2, 0, r) +
                                 (k * c_next + (1.0 - guided) * var).sqrt() * xi.narrow(2, 0, r));
    }
    s.xbar = next.to(dtype);
    smc_drop_runaways(s.logw, s.xbar, o_.smc, sig_next, s.sigma_data);
    if (ctx.t + 1 == o_.steps)
      s.out = smc_as_samples(s.svd->v(smc_final_draws(s.xbar, s.logw, o_.smc, ctx.rng, out.info)), b,
                             ctx.problem.prior());
    out.state = std::move(s);
    return out;
  }
  std::string divergence(const StepContext& ctx) const { return SmcKernel::divergence(ctx) + ", kappa=" + format_value(o_.kappa); }

 private:
  // c_{k,i} [r], the potentials' variances at grid level k: sigma_k^2 - tau_i^2 + kappa before k_i,
  // tau_i^2 - rho_i^2 + kappa at k_i, infinite (no potential) after it.
  at::Tensor potential_variance(const State& s, int64_t level) const {
    const double sig2 = s.sigmas[static_cast<size_t>(level)] * s.sigmas[static_cast<size_t>(level)];
    auto before = sig2 - s.tau2 + o_.kappa, at_last = s.tau2 - sig2 + o_.kappa;
    auto c = at::where(s.last_level > level, before, at_last);
    return at::where(s.last_level >= level, c, at::full_like(c, std::numeric_limits<double>::infinity()));
  }
  // log N(y_i; mean_i, var_i) per coordinate: y [r], mean [B, P, r], var [r] -> [B, P, r].
  static at::Tensor log_normal_each(const at::Tensor& y, const at::Tensor& mean, const at::Tensor& var) {
    return -0.5 * (y - mean).pow(2) / var - 0.5 * (2.0 * M_PI * var).log();
  }
  Options o_;
};

SamplerRegistrar reg_mcgdiff(kernel_entry<Mcgdiff>(
    "mcgdiff",
    "MCGdiff (Cardoso et al. 2024): sequential Monte Carlo of P particles along the reverse diffusion in the "
    "operator's SVD coordinates, guided by y noised to each level; asymptotically exact in P for linear A with "
    "Gaussian noise (needs the SVD view). K / samples_per_run runs per measurement, P denoiser calls per level. "
    "Budget B per measurement: S = floor(B / (runs x P)) levels"));

}  // namespace
}  // namespace psbench
