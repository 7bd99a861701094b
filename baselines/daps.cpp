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
//      with eta_i = langevin_lr / (1/r_i^2 + 1/sigma_y^2): a fixed fraction of the inverse curvature of the target
//      when ||A|| <= 1 (true of every image task and of the MCGdiff operator);
//   3. x = x0 + sigma_{i+1} xi (decoupled re-noising).
// The sample is x0 after the last level. Langevin steps call the operator only (no network).
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "core/rng.h"
#include "priors/ode_generator.h"
#include "samplers/chain_util.h"
#include "samplers/sampler.h"

namespace psbench {
namespace {

struct DapsOptions {
  int64_t levels = 200;
  double sigma_start = 0;  // 0 = the denoiser's sigma_max
  double sigma_end = 0.1;
  int64_t ode_steps = 5;
  bool heun = false;
  int64_t langevin_steps = 100;
  double langevin_lr = 0.1;
  double r_scale = 1.0;
  int64_t batch_size = 0;
  double divergence_threshold = 1e4;
};

class Daps : public Sampler {
 public:
  explicit Daps(DapsOptions o) : o_(o) {}
  int64_t num_chains(int64_t num_samples) const override { return num_samples; }

  std::vector<double> levels(const Denoiser& d) const {
    const double start = o_.sigma_start > 0 ? o_.sigma_start : d.sigma_max();
    if (o_.sigma_end >= start)
      throw ConfigError("sampler daps: sigma_end=" + format_value(o_.sigma_end) + " must be below sigma_start=" +
                        format_value(start));
    auto s = karras_sigmas(o_.levels, o_.sigma_end, start);
    s.pop_back();  // karras_sigmas appends 0
    return s;
  }
  int64_t planned_nfe(int64_t num_samples, const Prior& prior) const override {
    if (!prior.denoiser())
      throw ConfigError("sampler daps: prior '" + prior.name() + "' has no denoiser D(x, sigma)");
    levels(*prior.denoiser());
    return num_samples * o_.levels * evals_per_level();
  }

  int64_t evals_per_level() const { return o_.heun ? 2 * o_.ode_steps - 1 : o_.ode_steps; }

  SamplerOutput run(const Problem& problem, int64_t num_samples,
                    const std::vector<uint64_t>& chain_seeds) const override {
    at::NoGradGuard no_grad;
    SamplerOutput out;
    CountingDenoiser den(problem, "daps", out.sampling_nfe, false);
    const auto sig = levels(den);
    const Shape data = problem.prior().data_shape();
    const auto dtype = problem.prior().dtype();
    const int64_t n_chains = num_chains(num_samples);
    const int64_t batch = o_.batch_size > 0 ? o_.batch_size : n_chains;
    const double sd = den.sigma_data(), sy2 = problem.noise().sigma_y * problem.noise().sigma_y;

    std::vector<at::Generator> gens;
    for (auto s : chain_seeds) gens.push_back(make_generator(s));
    out.diverged.assign(n_chains, 0);
    std::vector<at::Tensor> kept(n_chains);
    TraceAccumulator potential_trace, move_trace;

    Stopwatch clock;
    for (int64_t first = 0; first < n_chains; first += batch) {
      LiveChains chains;
      for (int64_t c = first; c < std::min(n_chains, first + batch); ++c) chains.live.push_back(c);
      std::vector<int64_t> keep;
      at::Tensor x = sig[0] * randn_per_chain(gens, chains.live, data, dtype);
      at::Tensor x0;
      for (int64_t i = 0; i < o_.levels && !chains.empty(); ++i) {
        const int64_t b = chains.size();
        auto x0_hat = integrate_pf_ode(den, x, at::full({b}, sig[i], x.options()), o_.ode_steps, 7.0, o_.heun);
        const double r = o_.r_scale * sig[i], r2 = r * r;
        const double eta = o_.langevin_lr / (1.0 / r2 + 1.0 / sy2);
        // Langevin noise of this level and the re-noising draw, one block per chain.
        auto noise = randn_block_per_chain(gens, chains.live, o_.langevin_steps + 1, data, dtype);
        x0 = x0_hat;
        at::Tensor value;
        for (int64_t j = 0; j < o_.langevin_steps; ++j) {
          auto pg = potential_and_grad(problem, x0);
          value = pg.value;
          x0 = x0 + eta * (-(x0 - x0_hat) / r2 - pg.grad) + std::sqrt(2.0 * eta) * noise.select(1, j);
        }
        if (value.defined()) potential_trace.add(static_cast<size_t>(i), value.sum().item<double>(), b);
        move_trace.add(static_cast<size_t>(i), (x0 - x0_hat).flatten(1).norm(2, 1).sum().item<double>(), b);
        const double s_next = i + 1 < o_.levels ? sig[i + 1] : 0.0;
        x = x0 + s_next * noise.select(1, o_.langevin_steps);
        // x0 | x_t spreads over r_i around x0_hat: bound it like a state at noise level r_i.
        auto ok = finite_and_bounded(x0, at::scalar_tensor(o_.divergence_threshold * (r2 + sd * sd), x.options()))
                      .logical_and(finite_and_bounded(
                          x, at::scalar_tensor(o_.divergence_threshold * (s_next * s_next + r2 + sd * sd), x.options())));
        if (chains.check(ok, out, [&](int64_t c) {
              return "chain " + std::to_string(c) + " diverged (non-finite or ||x0||^2/dim > " +
                     format_value(o_.divergence_threshold) + " (r^2 + sigma_data^2)) at level " + std::to_string(i) +
                     " (sigma=" + format_value(sig[i]) + ", langevin_lr=" + format_value(o_.langevin_lr) + ")";
            }, keep)) {
          if (chains.empty()) break;
          x = select_rows(x, keep);
          x0 = select_rows(x0, keep);
        }
      }
      for (int64_t r = 0; r < chains.size(); ++r) kept[chains.live[r]] = x0[r].unsqueeze(0);
    }
    out.sampling_seconds = clock.seconds();
    out.samples = assemble_samples(kept, out.diverged, data, dtype);
    out.trace["langevin_potential"] = potential_trace.mean();
    out.trace["langevin_move"] = move_trace.mean();
    return out;
  }

 private:
  DapsOptions o_;
};

SamplerRegistrar reg_daps(
    {"daps",
     "DAPS (Zhang et al. 2024): per noise level, x0_hat by a short probability-flow ODE, Langevin on "
     "N(x0; x0_hat, r^2 I) exp(-R(x0)), re-noise to the next level; one run per sample",
     {OptionSpec::integer("levels", 200, "annealing levels (Karras grid from sigma_start to sigma_end)").at_least(1),
      OptionSpec::real("sigma_start", 0.0, "first noise level (0 = the denoiser's sigma_max)").at_least(0),
      OptionSpec::real("sigma_end", 0.1, "last noise level").above(0),
      OptionSpec::integer("ode_steps", 5, "steps of the x0_hat ODE").at_least(1),
      OptionSpec::choice("ode_solver", "euler", {"euler", "heun"},
                         "euler: ode_steps evaluations (1 step = Tweedie mean); heun: 2 ode_steps - 1"),
      OptionSpec::integer("langevin_steps", 100, "Langevin steps on x0 per level").at_least(0),
      OptionSpec::real("langevin_lr", 0.1,
                       "Langevin step as a fraction of the inverse curvature: eta = lr / (1/r^2 + 1/sigma_y^2)")
          .above(0),
      OptionSpec::real("r_scale", 1.0, "r_i = r_scale sigma_i: spread of the x0 | x_t Gaussian").above(0),
      OptionSpec::integer("batch_size", 0, "runs evaluated together (0 = all); results do not depend on it")
          .at_least(0)
          .execution(),
      OptionSpec::real("divergence_threshold", 1e4,
                       "a run with ||x0||^2/dim above this times (r^2 + sigma_data^2), or non-finite, is marked diverged")
          .above(0)},
     [](const Options& o) {
       DapsOptions d;
       d.levels = o.get_int("levels");
       d.sigma_start = o.get_real("sigma_start");
       d.sigma_end = o.get_real("sigma_end");
       d.ode_steps = o.get_int("ode_steps");
       d.heun = o.get_string("ode_solver") == "heun";
       d.langevin_steps = o.get_int("langevin_steps");
       d.langevin_lr = o.get_real("langevin_lr");
       d.r_scale = o.get_real("r_scale");
       d.batch_size = o.get_int("batch_size");
       d.divergence_threshold = o.get_real("divergence_threshold");
       return std::make_unique<Daps>(d);
     }});

}  // namespace
}  // namespace psbench
