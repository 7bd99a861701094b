// Ground truth: independent draws from the closed-form posterior of an analytic prior.
#include "core/rng.h"
#include "samplers/sampler.h"

namespace psbench {
namespace {

class ExactSampler : public Sampler {
 public:
  int64_t num_chains(int64_t num_samples) const override { return num_samples; }
  int64_t planned_nfe(int64_t, const Prior&) const override { return 0; }
  // No network evaluation: a budget sets nothing (its cells keep 0 NFE).
  BudgetFit fit_budget(int64_t, int64_t, const Prior&) const override { return {{}, "no network evaluations: budget ignored"}; }
  SamplerOutput run(const Problem& problem, int64_t num_samples,
                    const std::vector<uint64_t>& chain_seeds) const override {
    Stopwatch clock;
    auto post = problem.prior().exact_posterior(problem.op(), problem.noise().sigma_y, problem.y());
    if (!post)
      throw ConfigError("sampler exact: prior '" + problem.prior().name() + "' has no closed-form posterior for task '" +
                        problem.op().name() + "'");
    SamplerOutput out;
    out.warmup_seconds = clock.seconds();
    Stopwatch sampling;
    std::vector<at::Tensor> draws;
    for (int64_t c = 0; c < num_samples; ++c) {
      auto gen = make_generator(chain_seeds[c]);
      draws.push_back(post->sample(1, gen));
    }
    out.samples = at::cat(draws).to(problem.prior().dtype());
    out.diverged.assign(num_samples, 0);
    out.sampling_seconds = sampling.seconds();
    return out;
  }
};

SamplerRegistrar reg_exact({"exact", "exact posterior draws (analytic priors with a linear operator only)", {},
                            [](const Options&) { return std::make_unique<ExactSampler>(); }});

}  // namespace
}  // namespace psbench
