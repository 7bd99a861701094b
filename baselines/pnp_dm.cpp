// PnP-DM, plug-and-play diffusion-model priors in a split Gibbs sampler (Wu, Sun, Chen, Zhang, Yue, Bouman;
// NeurIPS 2024), for a linear operator with Gaussian noise through its SVD view. The chain alternates, at coupling
// level rho_k = max(rho_min, rho rho_decay_rate^k):
//   likelihood step  z ~ p(z | x, y) ∝ exp(-||y - A z||^2 / (2 sigma_y^2) - ||z - x||^2 / (2 rho^2)), exact in
//                    spectral coordinates: precision s_i^2 / sigma_y^2 + 1 / rho^2 on observed ones, z_i ~
//                    N(x_i, rho^2) elsewhere;
//   prior step       x ~ p(x | z) ∝ p(x) N(z; x, rho^2 I), the prior's reverse diffusion from z: Euler steps of
//                    the probability-flow ODE (mode pfode, the authors' default) or of the reverse SDE (mode sde,
//                    x' = x + 2 (sigma' - sigma)(x - D(x, sigma)) / sigma + sqrt(2 sigma (sigma - sigma')) xi, no
//                    noise into 0) down the levels of a fixed Karras grid of num_steps levels over the denoiser's
//                    [sigma_min, sigma_max] that lie below rho; as in the authors' code, z enters at the first
//                    level below rho.
// For rho -> 0 the chain's x-marginal tends to the posterior; at fixed rho it is the posterior of y under the
// noise sigma_y^2 + rho^2 s_i^2 (on a Gaussian prior, exactly, with an exact prior step). Only the SDE prior step
// samples p(x | z); the ODE maps z deterministically (it transports the marginals, not the conditional).
// The authors' configuration: rho = 0.1 constant (decay 1, rho_min 0), 100 iterations of which 40 burn-in, 20
// samples per run (every third iteration), num_steps = 100 (21 levels below 0.1 on the EDM grid 0.002-80).
// Cost per iteration: the levels below rho_k, one forward denoiser evaluation each; no gradient.
#include <cmath>

#include "baselines/reverse_diffusion.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct PnpDmOptions {
  enum class Mode { Pfode, Sde };
  int64_t chains = 1, burn_in = 40, thinning = 3, num_steps = 100;
  double rho = 0.1, rho_decay_rate = 1.0, rho_min = 0.0;
  Mode mode = Mode::Pfode;
  double divergence_threshold = 1e4;
  static const OptionSchema<PnpDmOptions>& schema() {
    static const auto s = [] {
      using O = PnpDmOptions;
      OptionSchema<O> s;
      s.integer(&O::chains, "chains", 1, "independent split Gibbs chains; samples_per_measurement must divide evenly")
          .at_least(1);
      s.integer(&O::burn_in, "burn_in", 40, "iterations discarded at the start of each chain (the authors: 40)")
          .at_least(0);
      s.integer(&O::thinning, "thinning", 3, "keep every thinning-th iteration after burn-in (the authors: 3)")
          .at_least(1);
      s.integer(&O::num_steps, "num_steps", 100,
                "levels of the Karras grid (rho 7) over the denoiser's noise range whose part below rho the prior "
                "step walks (the authors: 100)")
          .at_least(2);
      s.real(&O::rho, "rho", 0.1, "coupling level rho_0 between x and z (the authors: 0.1)").above(0);
      s.real(&O::rho_decay_rate, "rho_decay_rate", 1.0, "rho_k = max(rho_min, rho rho_decay_rate^k) (the authors: 1)")
          .above(0)
          .at_most(1);
      s.real(&O::rho_min, "rho_min", 0.0, "floor of the annealed rho_k (the authors: 0)").at_least(0);
      s.choice(&O::mode, "mode", O::Mode::Pfode, {{"pfode", O::Mode::Pfode}, {"sde", O::Mode::Sde}},
               "prior step: Euler steps of the probability-flow ODE (the authors' default) or of the reverse SDE "
               "(a sample of p(x | z))");
      add_divergence_threshold(s, &O::divergence_threshold);
      return s;
    }();
    return s;
  }
  double rho_at(int64_t k) const { return std::max(rho_min, rho * std::pow(rho_decay_rate, static_cast<double>(k))); }
};

class PnpDm {
 public:
  using Options = PnpDmOptions;
  using State = DiffusionState;  // sigmas: the prior step's Karras grid, then 0
  explicit PnpDm(Options o) : o_(o) {}

  Needs needs() const { return {.denoiser = true, .svd = true}; }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const {
    if (n % o_.chains != 0)
      throw ConfigError("sampler pnp_dm: samples_per_measurement=" + std::to_string(n) + " is not a multiple of chains=" +
                        std::to_string(o_.chains));
    return o_.chains;
  }
  std::vector<Phase> phases(int64_t per_chain, const Prior&) const {
    Phase p = Phase::of("split Gibbs", iterations(per_chain), false, Keep::Thinned);
    p.burn_in = o_.burn_in;
    p.thinning = o_.thinning;
    return {p};
  }
  int64_t planned_nfe(int64_t n, const Prior& prior) const {
    const auto grid = grid_of(*prior.denoiser());
    int64_t per_chain_nfe = 0;
    for (int64_t k = 0; k < iterations(n / chains(n)); ++k) per_chain_nfe += levels_below(grid, o_.rho_at(k));
    return chains(n) * per_chain_nfe;
  }
  // Budget rule (constant rho only): c = grid levels below rho per iteration; per chain floor(B / (chains c))
  // iterations, of which per_chain thinning are kept and the rest is burn-in. Sets burn_in.
  BudgetFit fit_budget(int64_t budget, int64_t n, const Prior& prior) const {
    if (o_.rho_decay_rate != 1.0)
      throw ConfigError("sampler pnp_dm: budget_mode set needs a constant rho (rho_decay_rate 1), got " +
                        format_value(o_.rho_decay_rate));
    const int64_t c = levels_below(grid_of(*prior.denoiser()), o_.rho), m = chains(n);
    const int64_t per_chain = budget / (m * c), kept = (n / m) * o_.thinning;
    if (per_chain < kept)
      throw ConfigError(budget_error("pnp_dm", budget, n, "the kept iterations alone cost " +
                                                             std::to_string(m * kept * c) + " (" + std::to_string(c) +
                                                             " per iteration and chain)"));
    return {{{"burn_in", per_chain - kept}}, "burn_in = floor(B / (chains c)) - per_chain thinning = floor(" +
                                                  std::to_string(budget) + " / (" + std::to_string(m) + " x " +
                                                  std::to_string(c) + ")) - " + std::to_string(kept) + " = " +
                                                  std::to_string(per_chain - kept)};
  }

  State init(const StepContext& ctx) const {
    const auto& den = ctx.problem.denoiser("pnp_dm");
    State s;
    s.sigmas = grid_of(den);
    s.sigma_data = den.sigma_data();
    s.svd = ctx.problem.op().svd();
    s.meas = spectral_measurement(*s.svd, ctx.problem.y(), ctx.problem.noise().sigma_y);
    // The authors' batch sampler starts from N(0, I).
    s.x = ctx.rng.normal(ctx.problem.prior().data_shape());
    return s;
  }
  State enter(State s, const StepContext&) const { return s; }

  Step<State> step(State s, const StepContext& ctx) const {
    const double rho = o_.rho_at(ctx.t), sy = ctx.problem.noise().sigma_y;
    const auto& m = s.meas;
    // Likelihood step in spectral coordinates: observed z_i ~ N((s y_u / sigma_y^2 + x_i / rho^2) / p, 1 / p),
    // p = s^2 / sigma_y^2 + 1 / rho^2 (y_u = (U^T y)_i = s y_bar_i); elsewhere z_i ~ N(x_i, rho^2).
    auto zb = s.svd->vt(s.x.to(at::kDouble));
    const auto xi = s.svd->vt(ctx.rng.normal(ctx.problem.prior().data_shape()).to(at::kDouble));
    auto next = zb + rho * xi;
    if (m.r > 0) {
      const auto prec = m.s.pow(2) / (sy * sy) + 1.0 / (rho * rho);
      const auto mean = (m.s.pow(2) * m.ybar / (sy * sy) + zb.narrow(1, 0, m.r) / (rho * rho)) / prec;
      next.narrow(1, 0, m.r).copy_(mean + xi.narrow(1, 0, m.r) / prec.sqrt());
    }
    at::Tensor x = s.svd->v(next).to(s.x.scalar_type());
    // Prior step: the grid's levels below rho, Euler steps of the ODE or the SDE down to 0.
    at::NoGradGuard no_grad;
    const int64_t n = static_cast<int64_t>(s.sigmas.size()) - 1;
    for (int64_t j = n - levels_below(s.sigmas, rho); j < n; ++j) {
      const double sig = s.sigmas[j], nxt = s.sigmas[j + 1];
      const auto d = (x - ctx.problem.denoise(x, at::full({x.size(0)}, sig, x.options()), false, ctx.nfe)) / sig;
      if (o_.mode == Options::Mode::Pfode) {
        x = x + (nxt - sig) * d;
      } else {
        x = x + 2.0 * (nxt - sig) * d;
        if (nxt > 0) x = x + std::sqrt(2.0 * sig * (sig - nxt)) * ctx.rng.normal(ctx.problem.prior().data_shape());
      }
    }
    s.x = x;
    Step<State> out;
    out.info.add("rho", at::full({x.size(0)}, rho, at::kDouble));
    out.state = std::move(s);
    return out;
  }
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext&) const { return diffusion_ok(s.x, 0.0, s.sigma_data, o_.divergence_threshold); }
  std::string divergence(const StepContext& ctx) const {
    return diffusion_divergence(o_.divergence_threshold, 0.0) + " at iteration " + std::to_string(ctx.t + 1) +
           "; rho=" + format_value(o_.rho_at(ctx.t));
  }

 private:
  int64_t iterations(int64_t per_chain) const { return o_.burn_in + per_chain * o_.thinning; }
  std::vector<double> grid_of(const Denoiser& den) const {
    return karras_sigmas(o_.num_steps, den.sigma_min(), den.sigma_max());
  }
  // Levels of the grid (without its final 0) strictly below rho: the prior step's evaluations.
  static int64_t levels_below(const std::vector<double>& grid, double rho) {
    int64_t c = 0;
    for (size_t i = 0; i + 1 < grid.size(); ++i) c += grid[i] < rho ? 1 : 0;
    return c;
  }
  Options o_;
};

SamplerRegistrar reg_pnp_dm(kernel_entry<PnpDm>(
    "pnp_dm",
    "PnP-DM (Wu et al. 2024): split Gibbs sampler alternating an exact Gaussian likelihood step (through the "
    "operator's SVD; linear A, Gaussian noise) and a reverse-diffusion prior step from noise level rho; one forward "
    "evaluation per grid level below rho and iteration. Budget B per measurement (constant rho): burn_in = floor(B / "
    "(chains c)) - per_chain thinning, c = levels below rho"));

}  // namespace
}  // namespace psbench
