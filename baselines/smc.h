#pragma once
// Pieces shared by the sequential Monte Carlo samplers (MCGdiff, and the SMC samplers after it): one
// sampler "chain" is one particle system of P particles, so a batch of B runs holds [B, P, ...] tensors
// and everything here works row by row. Log-weights are float64 whatever the prior's dtype.
#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <string>

#include "baselines/noise_grid.h"
#include "core/option_schema.h"
#include "operators/svd.h"
#include "samplers/chain_util.h"
#include "samplers/kernel.h"
#include "samplers/sampler.h"

namespace psbench {

// The options every SMC sampler shares (each sampler's schema includes them with OptionSchema::group).
struct SmcOptions {
  enum class Resampling { Multinomial, Systematic };
  int64_t particles = 256;
  int64_t samples_per_run = 1;  // draws from one run's final weighted particles
  double resample_ess = 1.0;    // resample when ESS < resample_ess * P (1: at every step)
  Resampling resampling = Resampling::Multinomial;
  double divergence_threshold = 1e4;
  NoiseGrid grid = NoiseGrid::Karras;
  static const OptionSchema<SmcOptions>& schema() {
    static const auto s = [] {
      using O = SmcOptions;
      OptionSchema<O> s;
      s.integer(&O::particles, "particles", 256, "P: particles of one SMC run").at_least(1);
      s.integer(&O::samples_per_run, "samples_per_run", 1,
                "posterior samples drawn (with replacement, by the final weights) from one run's particles; the "
                "samples of one run are dependent, so 1 gives independent samples")
          .at_least(1);
      s.real(&O::resample_ess, "resample_ess", 1.0,
             "resample when the effective sample size falls below this fraction of P (1: at every step)")
          .above(0)
          .at_most(1);
      s.choice(&O::resampling, "resampling", Resampling::Multinomial,
               {{"multinomial", Resampling::Multinomial}, {"systematic", Resampling::Systematic}},
               "ancestor draws: multinomial (independent) or systematic (one uniform per run, lower variance)");
      s.real(&O::divergence_threshold, "divergence_threshold", 1e4,
             "a particle whose mean square exceeds this times (1 + sigma^2 + sigma_data^2), or that is non-finite, is "
             "dropped (weight 0); a run left with no particle of finite weight is marked diverged")
          .above(0);
      add_noise_grid(s, &O::grid);
      return s;
    }();
    return s;
  }
};

// Effective sample size (sum w)^2 / sum w^2 of log-weights [B, P], per row [B].
inline at::Tensor smc_ess(const at::Tensor& logw) {
  auto w = at::softmax(logw, 1);
  return 1.0 / w.pow(2).sum(1);
}

// n ancestor indices per row [B, n] drawn from the normalised weights of logw [B, P]. `normals` [B, n] are
// standard normal draws of each run's own generator (ChainRng); they become uniforms through the normal CDF,
// so that every draw stays with its chain. Systematic resampling uses only column 0.
inline at::Tensor smc_ancestors(const at::Tensor& logw, const at::Tensor& normals, SmcOptions::Resampling how) {
  const int64_t b = logw.size(0), p = logw.size(1), n = normals.size(1);
  auto cdf = at::softmax(logw, 1).cumsum(1);
  cdf = cdf / cdf.select(1, p - 1).unsqueeze(1);  // the last entry exactly 1
  auto u = 0.5 * at::erfc(-normals.to(at::kDouble) / std::sqrt(2.0));  // Phi(z): uniform on (0, 1)
  if (how == SmcOptions::Resampling::Systematic) {
    auto grid = at::arange(n, at::TensorOptions().dtype(at::kDouble)).unsqueeze(0);
    u = (grid + u.narrow(1, 0, 1)) / static_cast<double>(n);
  }
  return at::searchsorted(cdf.contiguous(), u.contiguous()).clamp_max(p - 1).view({b, n});
}

// Rows of x [B, P, ...] picked by idx [B, n] -> [B, n, ...].
inline at::Tensor smc_gather(const at::Tensor& x, const at::Tensor& idx) {
  auto shape = x.sizes().vec();
  shape[1] = idx.size(1);
  auto flat = x.reshape({x.size(0), x.size(1), -1});
  auto picked = flat.gather(1, idx.unsqueeze(2).expand({idx.size(0), idx.size(1), flat.size(2)}));
  return picked.reshape(shape);
}

// Runs per measurement: K / samples_per_run, refused unless it divides.
inline int64_t smc_runs(const std::string& sampler, int64_t n, const SmcOptions& o) {
  if (n % o.samples_per_run != 0)
    throw ConfigError("sampler " + sampler + ": samples_per_measurement=" + std::to_string(n) +
                      " is not a multiple of samples_per_run=" + std::to_string(o.samples_per_run));
  return n / o.samples_per_run;
}

// Budget rule of an SMC sampler whose level costs one evaluation per particle and run:
// S = floor(B / (R P)) levels for R = K / samples_per_run runs of P particles.
inline BudgetFit smc_fit_budget(const std::string& sampler, int64_t budget, int64_t n, const SmcOptions& o) {
  const int64_t per_level = smc_runs(sampler, n, o) * o.particles;
  const int64_t steps = budget / per_level;
  if (steps < 1)
    throw ConfigError(
        budget_error(sampler, budget, n, "one level costs " + std::to_string(per_level) + " (runs x particles)"));
  return {{{"steps", steps}},
          "S = floor(B / (R P)) = floor(" + std::to_string(budget) + " / " + std::to_string(per_level) + ") = " +
              std::to_string(steps) + " levels"};
}

// One resampling decision per run: ancestors [B, P] where ESS < resample_ess * P (the identity elsewhere),
// whose log-weights are reset to 0. The normals are drawn at every step, so that a run's random stream never
// depends on its weights. Records ess_fraction and resampled in the step's trace.
inline at::Tensor smc_resample(at::Tensor& logw, const SmcOptions& o, const ChainRng& rng, Info& info) {
  const int64_t b = logw.size(0), p = logw.size(1);
  const auto ess = smc_ess(logw);  // [B]
  const auto need = ess < o.resample_ess * static_cast<double>(p) - 1e-9;
  auto idx = smc_ancestors(logw, rng.normal({p}), o.resampling);
  idx = at::where(need.unsqueeze(1), idx, at::arange(p, idx.options()).unsqueeze(0).expand({b, p}));
  logw = at::where(need.unsqueeze(1), at::zeros_like(logw), logw);
  info.add("ess_fraction", ess / static_cast<double>(p));
  info.add("resampled", need.to(at::kDouble));
  return idx;
}

// A run's samples: samples_per_run draws from its final weighted particles [B, P, n] -> [B * J, n]; records
// final_ess_fraction.
inline at::Tensor smc_final_draws(const at::Tensor& particles, const at::Tensor& logw, const SmcOptions& o,
                                  const ChainRng& rng, Info& info) {
  auto pick = smc_ancestors(logw, rng.normal({o.samples_per_run}), o.resampling);
  info.add("final_ess_fraction", smc_ess(logw) / static_cast<double>(logw.size(1)));
  return smc_gather(particles, pick).reshape({particles.size(0) * o.samples_per_run, particles.size(2)});
}

// [B, J, *data] from [B * J, n] rows.
inline at::Tensor smc_as_samples(const at::Tensor& rows, int64_t runs, const Prior& prior) {
  Shape shape{runs, rows.size(0) / runs};
  for (auto dim : prior.data_shape()) shape.push_back(dim);
  return rows.reshape(shape);
}

// Particles [B, P, n] at level sigma that are non-finite or whose mean square exceeds
// divergence_threshold (1 + sigma^2 + sigma_data^2) get weight 0 (log-weight -inf): a particle thrown out by a
// proposal is dropped by the next resampling instead of failing its run. Its weight was already negligible:
// the bound lies far in the tails of every level's marginal.
inline void smc_drop_runaways(at::Tensor& logw, const at::Tensor& particles, const SmcOptions& o, double sigma,
                              double sigma_data) {
  const double bound = o.divergence_threshold * (1.0 + sigma * sigma + sigma_data * sigma_data);
  auto x = particles.detach().to(at::kDouble);
  auto good = at::isfinite(x).all(2).logical_and(x.pow(2).mean(2) <= bound);  // [B, P]
  logw = at::where(good, logw, at::full_like(logw, -std::numeric_limits<double>::infinity()));
}

// A run is alive while some particle has a finite weight (smc_drop_runaways has zeroed the runaways').
inline at::Tensor smc_ok(const at::Tensor& logw) { return at::isfinite(logw).any(1); }

inline std::string smc_divergence(const SmcOptions& o, int64_t level, int64_t steps) {
  return "every particle non-finite, or with a mean square above " + format_value(o.divergence_threshold) +
         " (1 + sigma^2 + sigma_data^2), or with a non-finite weight at level " + std::to_string(level) + "; particles=" +
         std::to_string(o.particles) + ", steps=" + std::to_string(steps);
}

// The prior's ancestral kernel p(x' | x) = N(m, v I) from level sigma to sigma' for particles xbar [B, P, n] in the
// spectral coordinates of `svd`: m = a x + (1 - a) D(x, sigma), a = sigma'^2 / sigma^2, v = sigma'^2 (1 - a);
// one forward denoiser call per particle. m is float64.
struct SpectralMove {
  at::Tensor mean;  // [B, P, n]
  double var;
};
inline SpectralMove smc_spectral_move(const at::Tensor& xbar, const SvdView& svd, double sigma, double sigma_next,
                                      const StepContext& ctx) {
  const int64_t b = xbar.size(0), p = xbar.size(1), n = xbar.size(2);
  auto x = svd.v(xbar.reshape({b * p, n}));
  auto d = ctx.problem.denoise(x, at::full({b * p}, sigma, x.options()), false, ctx.nfe);
  auto dbar = svd.vt(d).view({b, p, n}).to(at::kDouble);
  const double a = sigma_next * sigma_next / (sigma * sigma);
  return {a * xbar.to(at::kDouble) + (1.0 - a) * dbar, sigma_next * sigma_next * (1.0 - a)};
}

// The kernel members every SMC sampler shares (samplers/kernel.h): R = K / samples_per_run runs of P particles
// over `steps` levels, one network evaluation per particle and level, the samples in State::out and the
// log-weights in State::logw. A sampler derives from it and adds needs(), init() and step().
class SmcKernel {
 public:
  // A run's samples are draws from its final particles, not successive states: no chain diagnostics.
  static constexpr bool kDrawsFormChains = false;
  SmcKernel(std::string name, int64_t steps, SmcOptions smc) : name_(std::move(name)), steps_(steps), smc_(smc) {}
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return smc_runs(name_, n, smc_); }
  std::vector<Phase> phases(int64_t, const Prior&) const { return {Phase::of("smc", steps_, false, Keep::Last)}; }
  int64_t planned_nfe(int64_t n, const Prior&) const { return chains(n) * smc_.particles * steps_; }
  BudgetFit fit_budget(int64_t budget, int64_t n, const Prior&) const { return smc_fit_budget(name_, budget, n, smc_); }
  template <class State>
  State enter(State s, const StepContext&) const {
    return s;
  }
  template <class State>
  at::Tensor sample(const State& s) const {
    return s.out;
  }
  template <class State>
  at::Tensor ok(const State& s, const StepContext&) const {
    return smc_ok(s.logw);
  }
  std::string divergence(const StepContext& ctx) const { return smc_divergence(smc_, ctx.t + 1, steps_); }

 private:
  std::string name_;
  int64_t steps_;
  SmcOptions smc_;
};

}  // namespace psbench
