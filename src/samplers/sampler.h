#pragma once
// Posterior samplers. A sampler sees the problem (prior interfaces, operator, noise, y) and a seed per
// chain; it never sees metrics or the store. Randomness of chain c comes only from its own seed, so
// samples do not depend on batching or on the order chains run. Samplers are kernels run by one driver
// (samplers/kernel.h, samplers/driver.h); this is the interface the runner sees.
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/registry.h"
#include "operators/operator.h"
#include "priors/prior.h"

namespace psbench {

// Network evaluations per image: forward-only and forward+backward counted apart.
struct NfeCount {
  int64_t forward = 0;
  int64_t forward_backward = 0;
  int64_t total() const { return forward + forward_backward; }
};

// One inverse problem y = A(x) + sigma_y n under a prior; evaluation helpers count NFE.
class Problem {
 public:
  Problem(const Prior& prior, const Operator& op, GaussianNoise noise, at::Tensor y)
      : prior_(prior), op_(op), noise_(noise), y_(std::move(y)) {}
  const Prior& prior() const { return prior_; }
  const Operator& op() const { return op_; }
  const GaussianNoise& noise() const { return noise_; }
  const at::Tensor& y() const { return y_; }  // [1, *output_shape]

  // Phi(z) for a batch, adding batch * evaluations_per_call to the right counter.
  at::Tensor generate(const at::Tensor& z, bool with_grad, NfeCount& count) const;
  // D(x, sigma) for a batch (one evaluation per image).
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma, bool with_grad, NfeCount& count) const;
  // Consistency function f(x, sigma) for a batch (consistency_evaluations() per image).
  at::Tensor consistency(const at::Tensor& x, const at::Tensor& sigma, bool with_grad, NfeCount& count) const;
  // R(x) = ||y - A(x)||^2 / (2 sigma_y^2) per batch element.
  at::Tensor potential(const at::Tensor& x) const;
  const Generator& generator(const std::string& sampler) const;  // errors if the prior has none
  const Denoiser& denoiser(const std::string& sampler) const;
  const ConsistencyFunction& consistency_function(const std::string& sampler) const;

 private:
  const Prior& prior_;
  const Operator& op_;
  GaussianNoise noise_;
  at::Tensor y_;
};

struct SamplerOutput {
  at::Tensor samples;               // [K, *data_shape]; chain-major: chain c's j-th kept sample at c*N+j
  std::vector<uint8_t> diverged;    // per chain
  std::string divergence_message;   // first divergence, if any
  NfeCount warmup_nfe, sampling_nfe;
  double warmup_seconds = 0, sampling_seconds = 0;
  // Per-step diagnostics averaged over live chains, e.g. "loss", "diverged_chains", "acceptance".
  std::map<std::string, std::vector<double>> trace;
};

// One kernel step at a time, outside the driver's loop: what a benchmark of a single step times.
class SingleSteps {
 public:
  virtual ~SingleSteps() = default;
  virtual void step() = 0;
  virtual const NfeCount& nfe() const = 0;
};

// budget_mode: set (README "NFE budgets"): the options a sampler's own rule sets so that its planned NFE per
// measurement is the budget, or the largest schedule below it the schedule's granularity allows.
struct BudgetFit {
  std::map<std::string, OptionValue> set;  // schedule options the rule sets (the others keep their values)
  std::string rule;                        // the rule with its numbers (stored as the cell's budget_rule)
};

// A budget rule's ConfigError: "B network evaluations per measurement (K samples) are too few for S: why".
std::string budget_error(const std::string& sampler, int64_t budget, int64_t num_samples, const std::string& why);

class Sampler {
 public:
  virtual ~Sampler() = default;
  // What the sampler needs of the prior and operator (a generator, a denoiser, linearity...), checked
  // when the experiment is validated: throws ConfigError naming the sampler and what is missing.
  virtual void check(const Prior& prior, const Operator& op) const {}
  // How many independent chains produce `num_samples` samples (validates divisibility).
  virtual int64_t num_chains(int64_t num_samples) const = 0;
  // How many of those chains go through the network together (the batch of one network call): the
  // runner's --threads auto chooses intra-op threads from it.
  virtual int64_t chains_per_batch(int64_t num_samples) const { return num_chains(num_samples); }
  // Whether a chain's kept draws are successive states of one Markov chain, which the chain diagnostics
  // (ESS, R-hat, autocorrelation time) assume; an SMC run's draws from its final particles are not.
  virtual bool draws_form_chains() const { return true; }
  // Planned NFE per measurement for `num_samples` samples (a formula: never a capability check).
  virtual int64_t planned_nfe(int64_t num_samples, const Prior& prior) const = 0;
  virtual SamplerOutput run(const Problem& problem, int64_t num_samples,
                            const std::vector<uint64_t>& chain_seeds) const = 0;
  // The sampler's schedule for `budget` network evaluations (forward and forward+backward, warm-up and
  // chain, summed) per measurement with `num_samples` samples. A budget below the smallest schedule is a
  // ConfigError (budget_error). Samplers without a rule refuse budget_mode: set.
  virtual BudgetFit fit_budget(int64_t budget, int64_t num_samples, const Prior& prior) const;
  // `chains` chains initialised and moved to the sampling phase (warm-up phases entered, not run), each
  // step() then advances them by one step of that phase (cycling through its schedule). nullptr for a
  // sampler that is not a step kernel (the exact sampler).
  virtual std::unique_ptr<SingleSteps> single_steps(const Problem& problem, int64_t chains, uint64_t seed) const {
    return nullptr;
  }
};

using SamplerRegistry = Registry<Sampler>;
using SamplerRegistrar = Registrar<Sampler>;

// Seconds on a steady clock since construction.
class Stopwatch {
 public:
  Stopwatch();
  double seconds() const;

 private:
  int64_t start_ns_;
};

// Builds a registered sampler through the same validated path as an experiment file: unknown keys,
// wrong types, out-of-range values and cross-field conflicts are ConfigErrors.
std::unique_ptr<Sampler> make_sampler(const std::string& name, std::map<std::string, OptionValue> given = {});

}  // namespace psbench
