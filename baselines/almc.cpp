// Annealed Langevin Monte Carlo (Parulekar, Rout, Shanmugam, Shakkottai 2025; ALGORITHMS.md §4).
//
// The paper works with the Ornstein–Uhlenbeck forward process dX = -X dt + sqrt(2) dB, whose marginal at
// time t is X_t = e^{-t} X_0 + sqrt(1 - e^{-2t}) xi, and samples the tilted path
//   mu_t(x) ∝ p_t(x) exp(-R(x)),   R(x) = ||y - A(x)||^2 / (2 sigma_y^2),
// from t = T (p_T ~ N(0, I)) down to an early stop t = tau > 0.
//
// Mapping to the EDM (variance-exploding) convention of psbench's denoisers:
//   X_t = e^{-t} (X_0 + sigma(t) xi)  with  sigma(t) = sqrt(e^{2t} - 1)   <=>   t(sigma) = ln(1 + sigma^2) / 2,
// so the OU state x corresponds to the EDM state u = e^{t} x at noise level sigma(t), p_t(x) = e^{td} p_sigma(e^t x)
// and the OU score is
//   score_t(x) = e^{t} grad log p_sigma(e^{t} x) = e^{t} (D(e^{t} x, sigma(t)) - e^{t} x) / sigma(t)^2.
// T defaults to t(sigma_max) (sigma_max = 80: T = 4.38); tau = 1e-3 is sigma(tau) = 0.045. The likelihood acts
// on the OU state x itself, as in the paper (at t = tau, x = e^{-tau} x_0 + O(sigma(tau)) noise).
//
// Phase 1 (warm start, no network call): Langevin on N(0, I) tilted by exp(-R),
//   x <- x - h (x + grad R(x)) + sqrt(2h) xi,  warm_start_steps steps.
// Phase 2 (annealing): N = ceil((T - tau) kappa / delta) steps; step n lowers the time to
//   t_n = T - n (T - tau) / N (a decrement of delta / kappa, rounded so that the last step lands on tau) and
//   takes one Langevin step on mu_{t_n}:  x <- x + delta (score_{t_n}(x) - grad R(x)) + sqrt(2 delta) xi.
// Each annealing step costs one forward denoiser evaluation; the sample is x at t = tau.
//
// Lag (why kappa must be large against the data scale): the target's mean moves, e^{-t} m along the path, by a
// factor e^{delta/kappa} per step, while a Langevin step of size delta relaxes toward it at rate delta / V (V the
// target's variance). In a direction the measurement does not see, with prior N(m, v) there, the chain's mean
// settles at kappa / (kappa + v) of the target's near the end (kappa / (1 + kappa) for unit variance): kappa = 1
// with v = 1 returns half the prior mean. `predictor: ou` (a psbench variant, not in the paper) first moves x by
// the OU mean transport, x <- e^{t_{n-1} - t_n} x, before each Langevin step; a chain whose mean tracks the
// target's then keeps tracking it, and the lag is gone (tests/baselines/baselines_test.cpp).
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "samplers/chain_util.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct AlmcOptions {
  enum class Predictor { None, Ou };
  int64_t warm_start_steps = 1000;
  double warm_start_step = 5e-3;
  double t_start = 0;  // 0 = t(sigma_max) of the denoiser
  double delta = 1e-3;
  double kappa = 1.0;
  double tau = 1e-3;
  double divergence_threshold = 1e4;
  Predictor predictor = Predictor::None;
  static const OptionSchema<AlmcOptions>& schema() {
    static const auto s = [] {
      using O = AlmcOptions;
      OptionSchema<O> s;
      s.integer(&O::warm_start_steps, "warm_start_steps", 1000, "phase-1 Langevin steps on N(0, I) exp(-R) (no network call)")
          .at_least(0);
      s.real(&O::warm_start_step, "warm_start_step", 5e-3, "h: phase-1 step size").above(0);
      s.real(&O::t_start, "t_start", 0.0,
             "T: OU time where the annealing starts (0 = the denoiser's sigma_max, T = ln(1 + sigma_max^2)/2)")
          .at_least(0);
      s.real(&O::delta, "delta", 1e-3, "Langevin step size of the annealing phase").above(0);
      s.real(&O::kappa, "kappa", 1.0,
             "annealing rate: the OU time drops by delta / kappa per step; must be large against the data variance v, "
             "or the mean lags the target's by kappa / (kappa + v)")
          .above(0);
      s.real(&O::tau, "tau", 1e-3, "early stop: the OU time of the returned samples (sigma = sqrt(e^{2 tau} - 1))").above(0);
      s.real(&O::divergence_threshold, "divergence_threshold", 1e4,
             "a run with ||x||^2/dim above this times (1 + sigma_data^2), or non-finite, is marked diverged")
          .above(0);
      s.choice(&O::predictor, "predictor", Predictor::None, {{"none", Predictor::None}, {"ou", Predictor::Ou}},
               "none: the paper's ALMC; ou: a psbench variant (not in the paper) that scales x by e^{t_(n-1) - t_n} "
               "before each annealing step, removing the lag of the mean")
          .added_later();
      return s;
    }();
    return s;
  }
};

double ou_time(double sigma) { return 0.5 * std::log1p(sigma * sigma); }
double edm_sigma(double t) { return std::sqrt(std::expm1(2.0 * t)); }

class Almc {
 public:
  using Options = AlmcOptions;
  static constexpr int64_t kBlock = 64;  // noise drawn per chain in blocks of this many steps
  struct State {
    at::Tensor x;      // the OU state
    at::Tensor noise;  // [B, kBlock, *data]: the current block of Langevin noise
    int64_t k = 0;     // steps taken over both phases: blocks never depend on the phase lengths' remainders
    double t_start = 0, sigma_data = 0.5;
    int64_t anneal_steps = 0;
    void keep_rows(const at::Tensor& rows) {
      x = keep_defined_rows(x, rows);
      noise = keep_defined_rows(noise, rows);
    }
  };
  explicit Almc(Options o) : o_(o) {}

  Needs needs() const { return {.denoiser = true}; }
  void validate(const Prior& prior) const { start_time(*prior.denoiser()); }
  int64_t chains(int64_t n) const { return n; }
  std::vector<Phase> phases(int64_t, const Prior& prior) const {
    return {Phase::of("warm-up", o_.warm_start_steps, true),
            Phase::of("annealing", anneal_steps(start_time(*prior.denoiser())), false, Keep::Last)};
  }
  int64_t planned_nfe(int64_t n, const Prior& prior) const {
    return prior.denoiser() ? n * anneal_steps(start_time(*prior.denoiser())) : 0;
  }

  // Budget rule: N = floor(B / K) annealing steps (phase 1 calls no network), kappa = N delta / (T - tau)
  // (delta, the step size, kept).
  BudgetFit fit_budget(int64_t budget, int64_t n, const Prior& prior) const {
    const int64_t steps = budget / n;
    if (steps < 1) throw ConfigError(budget_error("almc", budget, n, "one annealing step per run costs " + std::to_string(n)));
    const double t = start_time(*prior.denoiser());
    Options fitted = o_;
    fitted.kappa = static_cast<double>(steps) * o_.delta / (t - o_.tau);
    // ceil((T - tau) kappa / delta) must give exactly N: step kappa by ulps against rounding.
    while (Almc(fitted).anneal_steps(t) > steps) fitted.kappa = std::nextafter(fitted.kappa, 0.0);
    while (Almc(fitted).anneal_steps(t) < steps) fitted.kappa = std::nextafter(fitted.kappa, 1e300);
    return {{{"kappa", fitted.kappa}},
            "N = floor(B / K) = floor(" + std::to_string(budget) + " / " + std::to_string(n) + ") = " +
                std::to_string(steps) + " annealing steps: kappa = N delta / (T - tau) = " + format_value(fitted.kappa)};
  }

  State init(const StepContext& ctx) const {
    const auto& den = ctx.problem.denoiser("almc");
    State s;
    s.t_start = start_time(den);
    s.anneal_steps = anneal_steps(s.t_start);
    s.sigma_data = den.sigma_data();
    s.x = ctx.rng.normal(ctx.problem.prior().data_shape());
    return s;
  }
  State enter(State s, const StepContext&) const { return s; }

  Step<State> step(State s, const StepContext& ctx) const {
    at::NoGradGuard no_grad;
    if (s.k % kBlock == 0) ctx.rng.fill_normal_block(s.noise, kBlock, ctx.problem.prior().data_shape());
    auto xi = s.noise.select(1, s.k % kBlock);
    ++s.k;
    Step<State> out;
    if (ctx.phase == 0) {
      // Langevin on N(0, I) tilted by exp(-R).
      auto pg = potential_and_grad(ctx.problem, s.x);
      const double h = o_.warm_start_step;
      out.info.add("warmup_potential", pg.value);
      s.x = s.x - h * (s.x + pg.grad) + std::sqrt(2.0 * h) * xi;
    } else {
      const int64_t n = ctx.t + 1;
      const double t = s.t_start - static_cast<double>(n) * (s.t_start - o_.tau) / static_cast<double>(s.anneal_steps);
      // The OU mean transport from the previous time to t (variant `ou`).
      if (o_.predictor == Options::Predictor::Ou)
        s.x = std::exp((s.t_start - o_.tau) / static_cast<double>(s.anneal_steps)) * s.x;
      auto pg = potential_and_grad(ctx.problem, s.x);
      const double sigma = edm_sigma(t), et = std::exp(t);
      auto u = et * s.x;
      auto d = ctx.problem.denoise(u, at::full({s.x.size(0)}, sigma, s.x.options()), false, ctx.nfe);
      auto score = et * (d - u) / (sigma * sigma);
      out.info.add("anneal_potential", pg.value);
      out.info.add("sigma", at::full({s.x.size(0)}, sigma, at::TensorOptions().dtype(at::kDouble)));
      s.x = s.x + o_.delta * (score - pg.grad) + std::sqrt(2.0 * o_.delta) * xi;
    }
    out.state = std::move(s);
    return out;
  }
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext&) const {
    return finite_and_bounded(
        s.x, at::scalar_tensor(o_.divergence_threshold * (1.0 + s.sigma_data * s.sigma_data), at::TensorOptions().dtype(s.x.scalar_type())));
  }
  std::string divergence(const StepContext& ctx) const {
    std::string where;
    if (ctx.phase == 1) {
      const double t0 = start_time(ctx.problem.denoiser("almc"));
      where = ", t=" + format_value(t0 - static_cast<double>(ctx.t + 1) * (t0 - o_.tau) /
                                             static_cast<double>(anneal_steps(t0)));
    }
    return "non-finite or ||x||^2/dim > " + format_value(o_.divergence_threshold) + " (1 + sigma_data^2)" + where +
           "; warm_start_step=" + format_value(o_.warm_start_step) + ", delta=" + format_value(o_.delta) +
           ", kappa=" + format_value(o_.kappa) + (o_.predictor == Options::Predictor::Ou ? ", predictor=ou" : "");
  }

 private:
  double start_time(const Denoiser& d) const {
    const double t_max = ou_time(d.sigma_max());
    if (o_.t_start > t_max)
      throw ConfigError("sampler almc: t_start=" + format_value(o_.t_start) + " is beyond the denoiser's sigma_max=" +
                        format_value(d.sigma_max()) + " (OU time " + format_value(t_max) + ")");
    const double t = o_.t_start > 0 ? o_.t_start : t_max;
    if (o_.tau >= t)
      throw ConfigError("sampler almc: tau=" + format_value(o_.tau) + " must be below the start time " + format_value(t));
    return t;
  }
  int64_t anneal_steps(double t_start) const {
    return static_cast<int64_t>(std::ceil((t_start - o_.tau) * o_.kappa / o_.delta - 1e-9));
  }
  Options o_;
};

SamplerRegistrar reg_almc(kernel_entry<Almc>(
    "almc",
    "annealed Langevin Monte Carlo (Parulekar et al. 2025): Langevin on N(0, I) tilted by the likelihood, then one "
    "Langevin step per decrement of OU time on p_t(x) exp(-R(x)), t(sigma) = ln(1 + sigma^2)/2; one run per sample. "
    "Budget B per measurement: N = floor(B / K) annealing steps, kappa = N delta / (T - tau)"));

}  // namespace
}  // namespace psbench
