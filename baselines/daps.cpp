// DAPS, decoupled annealing posterior sampling (Zhang et al. 2024; ALGORITHMS.md §5).
//
// Noise levels sigma_0 = sigma_start > ... > sigma_{L-1} = sigma_end on the Karras grid (rho 7); x ~ sigma_0 z.
// At level i:
//   1. x0_hat = probability-flow ODE from (x, sigma_i) to 0 with ode_steps Euler steps (ode_steps forward
//      denoiser evaluations; one step is the Tweedie mean D(x, sigma_i)) or Heun steps (2 ode_steps - 1;
//      unstable for very few steps: the corrector at sigma_min after a long step explodes);
//   2. Langevin on x0 for langevin_steps steps, started at x0_hat, targeting
//        N(x0; x0_hat, r_i^2 I) exp(-R(x0)),  r_i = r_scale sigma_i:
//        x0 <- x0 + eta_i (-(x0 - x0_hat) / r_i^2 - grad R(x0)) + sqrt(2 eta_i) xi,
//      with eta_i = langevin_lr / (1/r_i^2 + max(1, L^2)/sigma_y^2), L the operator's Lipschitz constant
//      (Operator::lipschitz; ||A|| for a linear A): at most the fraction langevin_lr of the inverse curvature
//      1/r_i^2 + L^2/sigma_y^2 of the target. The published rule assumes ||A|| <= 1 (every image task but HDR, and
//      the MCGdiff operator) and is unchanged there; HDR's slope 2 would otherwise make a step of lr 0.9 diverge;
//   3. x = x0 + sigma_{i+1} xi (decoupled re-noising).
// The sample is x0 after the last level. Langevin steps call the operator only (no network).
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>

#include "priors/ode_generator.h"
#include "samplers/chain_util.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct DapsOptions {
  enum class Solver { Euler, Heun };
  int64_t levels = 200;
  double sigma_start = 0;  // 0 = the denoiser's sigma_max
  double sigma_end = 0.1;
  int64_t ode_steps = 5;
  Solver ode_solver = Solver::Euler;
  int64_t langevin_steps = 100;
  double langevin_lr = 0.1;
  double r_scale = 1.0;
  double divergence_threshold = 1e4;
  static const OptionSchema<DapsOptions>& schema() {
    static const auto s = [] {
      using O = DapsOptions;
      OptionSchema<O> s;
      s.integer(&O::levels, "levels", 200, "annealing levels (Karras grid from sigma_start to sigma_end)").at_least(1);
      s.real(&O::sigma_start, "sigma_start", 0.0, "first noise level (0 = the denoiser's sigma_max)").at_least(0);
      s.real(&O::sigma_end, "sigma_end", 0.1, "last noise level").above(0);
      s.integer(&O::ode_steps, "ode_steps", 5, "steps of the x0_hat ODE").at_least(1);
      s.choice(&O::ode_solver, "ode_solver", Solver::Euler, {{"euler", Solver::Euler}, {"heun", Solver::Heun}},
               "euler: ode_steps evaluations (1 step = Tweedie mean); heun: 2 ode_steps - 1");
      s.integer(&O::langevin_steps, "langevin_steps", 100, "Langevin steps on x0 per level").at_least(0);
      s.real(&O::langevin_lr, "langevin_lr", 0.1,
             "Langevin step as a fraction of the inverse curvature: eta = lr / (1/r^2 + max(1, L^2)/sigma_y^2), L the "
             "operator's Lipschitz constant")
          .above(0);
      s.real(&O::r_scale, "r_scale", 1.0, "r_i = r_scale sigma_i: spread of the x0 | x_t Gaussian").above(0);
      s.real(&O::divergence_threshold, "divergence_threshold", 1e4,
             "a run with ||x0||^2/dim above this times (r^2 + sigma_data^2), or non-finite, is marked diverged")
          .above(0);
      return s;
    }();
    return s;
  }
};

class Daps {
 public:
  using Options = DapsOptions;
  struct State {
    at::Tensor x, x0;         // x_t at the current level; the x0 draw of the last level
    std::vector<double> sig;  // the levels
    double sigma_data = 0.5;
    double curvature_scale = 1;  // max(1, L^2)
    at::Tensor noise;            // [B, langevin_steps + 1, *data]: the level's Langevin and re-noising draws
    void keep_rows(const at::Tensor& rows) {
      x = keep_defined_rows(x, rows);
      x0 = keep_defined_rows(x0, rows);
      noise = keep_defined_rows(noise, rows);
    }
  };
  explicit Daps(Options o) : o_(o) {}

  Needs needs() const { return {.denoiser = true}; }
  void validate(const Prior& prior) const { levels(*prior.denoiser()); }
  int64_t chains(int64_t n) const { return n; }
  std::vector<Phase> phases(int64_t, const Prior&) const { return {Phase::of("level", o_.levels, false, Keep::Last)}; }
  int64_t planned_nfe(int64_t n, const Prior&) const { return n * o_.levels * evals_per_level(); }

  // Budget rule: levels = floor(B / (K e)), e = evaluations of one level's ODE (ode_steps, Heun 2 ode_steps - 1);
  // ode_steps and langevin_steps (no network call) kept.
  BudgetFit fit_budget(int64_t budget, int64_t n, const Prior&) const {
    const int64_t e = evals_per_level(), lv = budget / (n * e);
    if (lv < 1)
      throw ConfigError(budget_error("daps", budget, n, "one level of each of the " + std::to_string(n) +
                                                            " runs costs " + std::to_string(n * e) + " (ode_steps=" +
                                                            std::to_string(o_.ode_steps) + ")"));
    return {{{"levels", lv}},
            "levels = floor(B / (K e)) = floor(" + std::to_string(budget) + " / (" + std::to_string(n) + " x " +
                std::to_string(e) + ")) = " + std::to_string(lv)};
  }

  State init(const StepContext& ctx) const {
    const auto& den = ctx.problem.denoiser("daps");
    State s;
    s.sig = levels(den);
    s.sigma_data = den.sigma_data();
    const double lip = ctx.problem.op().lipschitz();
    s.curvature_scale = std::max(1.0, lip * lip);
    s.x = s.sig[0] * ctx.rng.normal(ctx.problem.prior().data_shape());
    return s;
  }
  State enter(State s, const StepContext&) const { return s; }

  Step<State> step(State s, const StepContext& ctx) const {
    at::NoGradGuard no_grad;
    const auto& problem = ctx.problem;
    CountingDenoiser den(problem, "daps", ctx.nfe, false);
    const int64_t i = ctx.t, b = s.x.size(0);
    const double sy2 = problem.noise().sigma_y * problem.noise().sigma_y;
    auto x0_hat = integrate_pf_ode(den, s.x, at::full({b}, s.sig[i], s.x.options()), o_.ode_steps, 7.0,
                                   o_.ode_solver == Options::Solver::Heun);
    const double r = o_.r_scale * s.sig[i], r2 = r * r;
    const double eta = o_.langevin_lr / (1.0 / r2 + s.curvature_scale / sy2);
    // Langevin noise of this level and the re-noising draw, one block per chain.
    ctx.rng.fill_normal_block(s.noise, o_.langevin_steps + 1, problem.prior().data_shape());
    const auto& noise = s.noise;
    auto x0 = x0_hat;
    at::Tensor value;
    for (int64_t j = 0; j < o_.langevin_steps; ++j) {
      auto pg = potential_and_grad(problem, x0);
      value = pg.value;
      x0 = x0 + eta * (-(x0 - x0_hat) / r2 - pg.grad) + std::sqrt(2.0 * eta) * noise.select(1, j);
    }
    Step<State> out;
    if (value.defined()) out.info.add("langevin_potential", value);
    out.info.add("langevin_move", (x0 - x0_hat).flatten(1).norm(2, 1));
    s.x = x0 + next_sigma(s, i) * noise.select(1, o_.langevin_steps);
    s.x0 = x0;
    out.state = std::move(s);
    return out;
  }
  at::Tensor sample(const State& s) const { return s.x0; }
  // x0 | x_t spreads over r_i around x0_hat: bound it like a state at noise level r_i.
  at::Tensor ok(const State& s, const StepContext& ctx) const {
    const double r = o_.r_scale * s.sig[ctx.t], r2 = r * r, s_next = next_sigma(s, ctx.t), sd = s.sigma_data;
    return finite_and_bounded(s.x0, at::scalar_tensor(o_.divergence_threshold * (r2 + sd * sd), s.x.options()))
        .logical_and(finite_and_bounded(
            s.x, at::scalar_tensor(o_.divergence_threshold * (s_next * s_next + r2 + sd * sd), s.x.options())));
  }
  std::string divergence(const StepContext& ctx) const {
    return "non-finite or ||x0||^2/dim > " + format_value(o_.divergence_threshold) + " (r^2 + sigma_data^2), sigma=" +
           format_value(levels(ctx.problem.denoiser("daps"))[ctx.t]) + "; langevin_lr=" + format_value(o_.langevin_lr);
  }

 private:
  std::vector<double> levels(const Denoiser& d) const {
    const double start = o_.sigma_start > 0 ? o_.sigma_start : d.sigma_max();
    if (o_.sigma_end >= start)
      throw ConfigError("sampler daps: sigma_end=" + format_value(o_.sigma_end) + " must be below sigma_start=" +
                        format_value(start));
    auto s = karras_sigmas(o_.levels, o_.sigma_end, start);
    s.pop_back();  // karras_sigmas appends 0
    return s;
  }
  double next_sigma(const State& s, int64_t i) const { return i + 1 < o_.levels ? s.sig[i + 1] : 0.0; }
  int64_t evals_per_level() const {
    return o_.ode_solver == Options::Solver::Heun ? 2 * o_.ode_steps - 1 : o_.ode_steps;
  }
  Options o_;
};

SamplerRegistrar reg_daps(kernel_entry<Daps>(
    "daps",
    "DAPS (Zhang et al. 2024): per noise level, x0_hat by a short probability-flow ODE, Langevin on "
    "N(x0; x0_hat, r^2 I) exp(-R(x0)), re-noise to the next level; one run per sample. Budget B per measurement: levels = floor(B / (K e)), e = "
    "ODE evaluations per level (ode_steps, Heun 2 ode_steps - 1); ode_steps and langevin_steps kept"));

}  // namespace
}  // namespace psbench
