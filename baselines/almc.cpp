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
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "core/rng.h"
#include "samplers/chain_util.h"
#include "samplers/sampler.h"

namespace psbench {
namespace {

struct AlmcOptions {
  int64_t warm_start_steps = 1000;
  double warm_start_step = 5e-3;
  double t_start = 0;  // 0 = t(sigma_max) of the denoiser
  double delta = 1e-3;
  double kappa = 1.0;
  double tau = 1e-3;
  int64_t batch_size = 0;
  double divergence_threshold = 1e4;
};

double ou_time(double sigma) { return 0.5 * std::log1p(sigma * sigma); }
double edm_sigma(double t) { return std::sqrt(std::expm1(2.0 * t)); }

class Almc : public Sampler {
 public:
  explicit Almc(AlmcOptions o) : o_(o) {}
  int64_t num_chains(int64_t num_samples) const override { return num_samples; }

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
  int64_t planned_nfe(int64_t num_samples, const Prior& prior) const override {
    if (!prior.denoiser())
      throw ConfigError("sampler almc: prior '" + prior.name() + "' has no denoiser D(x, sigma)");
    return num_samples * anneal_steps(start_time(*prior.denoiser()));
  }

  SamplerOutput run(const Problem& problem, int64_t num_samples,
                    const std::vector<uint64_t>& chain_seeds) const override {
    at::NoGradGuard no_grad;
    const auto& den = problem.denoiser("almc");
    const double t_start = start_time(den);
    const int64_t n_steps = anneal_steps(t_start);
    const Shape data = problem.prior().data_shape();
    const auto dtype = problem.prior().dtype();
    const int64_t n_chains = num_chains(num_samples);
    const int64_t batch = o_.batch_size > 0 ? o_.batch_size : n_chains;
    const double sd = den.sigma_data();
    const int64_t block = 64;  // noise drawn per chain in blocks of this many steps

    std::vector<at::Generator> gens;
    for (auto s : chain_seeds) gens.push_back(make_generator(s));
    SamplerOutput out;
    out.diverged.assign(n_chains, 0);
    std::vector<at::Tensor> kept(n_chains);
    TraceAccumulator warm_trace, anneal_trace, sigma_trace;

    for (int64_t first = 0; first < n_chains; first += batch) {
      LiveChains chains;
      for (int64_t c = first; c < std::min(n_chains, first + batch); ++c) chains.live.push_back(c);
      std::vector<int64_t> keep;
      at::Tensor noise;
      // Steps are numbered across both phases so that noise blocks never depend on the phase lengths' remainders.
      auto step_noise = [&](int64_t k) {
        if (k % block == 0) noise = randn_block_per_chain(gens, chains.live, block, data, dtype);
        return noise.select(1, k % block);
      };
      auto drop = [&](at::Tensor& x, const at::Tensor& limit, const std::string& where) {
        if (chains.check(finite_and_bounded(x, limit), out, [&](int64_t c) {
              return "chain " + std::to_string(c) + " diverged (non-finite or ||x||^2/dim > " +
                     format_value(o_.divergence_threshold) + " (1 + sigma_data^2)) at " + where +
                     " (warm_start_step=" + format_value(o_.warm_start_step) + ", delta=" + format_value(o_.delta) +
                     ", kappa=" + format_value(o_.kappa) + ")";
            }, keep)) {
          if (!chains.empty()) {
            x = select_rows(x, keep);
            noise = select_rows(noise, keep);
          }
        }
      };
      const auto limit = at::scalar_tensor(o_.divergence_threshold * (1.0 + sd * sd), at::TensorOptions().dtype(dtype));

      Stopwatch warm_clock;
      at::Tensor x = randn_per_chain(gens, chains.live, data, dtype);
      const double h = o_.warm_start_step;
      int64_t k = 0;
      for (int64_t j = 0; j < o_.warm_start_steps && !chains.empty(); ++j, ++k) {
        auto xi = step_noise(k);
        auto pg = potential_and_grad(problem, x);
        warm_trace.add(static_cast<size_t>(j), pg.value.sum().item<double>(), chains.size());
        x = x - h * (x + pg.grad) + std::sqrt(2.0 * h) * xi;
        drop(x, limit, "warm-up step " + std::to_string(j));
      }
      out.warmup_seconds += warm_clock.seconds();

      Stopwatch anneal_clock;
      for (int64_t n = 1; n <= n_steps && !chains.empty(); ++n, ++k) {
        auto xi = step_noise(k);
        const double t = t_start - static_cast<double>(n) * (t_start - o_.tau) / static_cast<double>(n_steps);
        const double sigma = edm_sigma(t), et = std::exp(t);
        auto u = et * x;
        auto d = problem.denoise(u, at::full({chains.size()}, sigma, x.options()), false, out.sampling_nfe);
        auto score = et * (d - u) / (sigma * sigma);
        auto pg = potential_and_grad(problem, x);
        anneal_trace.add(static_cast<size_t>(n - 1), pg.value.sum().item<double>(), chains.size());
        sigma_trace.add(static_cast<size_t>(n - 1), sigma * static_cast<double>(chains.size()), chains.size());
        x = x + o_.delta * (score - pg.grad) + std::sqrt(2.0 * o_.delta) * xi;
        drop(x, limit, "annealing step " + std::to_string(n) + " (t=" + format_value(t) + ")");
      }
      for (int64_t r = 0; r < chains.size(); ++r) kept[chains.live[r]] = x[r].unsqueeze(0);
      out.sampling_seconds += anneal_clock.seconds();
    }
    out.samples = assemble_samples(kept, out.diverged, data, dtype);
    out.trace["warmup_potential"] = warm_trace.mean();
    out.trace["anneal_potential"] = anneal_trace.mean();
    out.trace["sigma"] = sigma_trace.mean();
    return out;
  }

 private:
  AlmcOptions o_;
};

SamplerRegistrar reg_almc(
    {"almc",
     "annealed Langevin Monte Carlo (Parulekar et al. 2025): Langevin on N(0, I) tilted by the likelihood, then one "
     "Langevin step per decrement of OU time on p_t(x) exp(-R(x)), t(sigma) = ln(1 + sigma^2)/2; one run per sample",
     {OptionSpec::integer("warm_start_steps", 1000, "phase-1 Langevin steps on N(0, I) exp(-R) (no network call)")
          .at_least(0),
      OptionSpec::real("warm_start_step", 5e-3, "h: phase-1 step size").above(0),
      OptionSpec::real("t_start", 0.0,
                       "T: OU time where the annealing starts (0 = the denoiser's sigma_max, T = ln(1 + sigma_max^2)/2)")
          .at_least(0),
      OptionSpec::real("delta", 1e-3, "Langevin step size of the annealing phase").above(0),
      OptionSpec::real("kappa", 1.0, "annealing rate: the OU time drops by delta / kappa per step").above(0),
      OptionSpec::real("tau", 1e-3, "early stop: the OU time of the returned samples (sigma = sqrt(e^{2 tau} - 1))")
          .above(0),
      OptionSpec::integer("batch_size", 0, "runs evaluated together (0 = all); results do not depend on it")
          .at_least(0)
          .execution(),
      OptionSpec::real("divergence_threshold", 1e4,
                       "a run with ||x||^2/dim above this times (1 + sigma_data^2), or non-finite, is marked diverged")
          .above(0)},
     [](const Options& o) {
       AlmcOptions a;
       a.warm_start_steps = o.get_int("warm_start_steps");
       a.warm_start_step = o.get_real("warm_start_step");
       a.t_start = o.get_real("t_start");
       a.delta = o.get_real("delta");
       a.kappa = o.get_real("kappa");
       a.tau = o.get_real("tau");
       a.batch_size = o.get_int("batch_size");
       a.divergence_threshold = o.get_real("divergence_threshold");
       return std::make_unique<Almc>(a);
     }});

}  // namespace
}  // namespace psbench
