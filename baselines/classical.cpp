// The classical row of a table: the operator's own pseudo-inverse of y (average-pooling SR: block
// replication; inpainting: observed pixels, unobserved ones at 0 = mid-grey; Gaussian deblur: the
// Tikhonov solution; low-rank: the Moore-Penrose inverse). No prior, no network call: it gives every
// column of a fidelity table a floor that a posterior sampler should beat. Deterministic, so its K
// "samples" are K copies (zero diversity, stated as such).
#include "core/errors.h"
#include "samplers/sampler.h"

namespace psbench {
namespace {

class PseudoInverse : public Sampler {
 public:
  void check(const Prior&, const Operator& op) const override {
    if (!op.has_pseudo_inverse())
      throw ConfigError("sampler pseudo_inverse: task '" + op.name() + "' has no pseudo-inverse");
  }
  int64_t num_chains(int64_t num_samples) const override { return num_samples; }
  int64_t planned_nfe(int64_t, const Prior&) const override { return 0; }
  // No network evaluation: a budget sets nothing (its cells keep 0 NFE).
  BudgetFit fit_budget(int64_t, int64_t, const Prior&) const override { return {{}, "no network evaluations: budget ignored"}; }
  SamplerOutput run(const Problem& problem, int64_t num_samples, const std::vector<uint64_t>&) const override {
    check(problem.prior(), problem.op());
    SamplerOutput out;
    Stopwatch clock;
    at::NoGradGuard no_grad;
    auto x = problem.op().pseudo_inverse(problem.y()).to(problem.prior().dtype());  // y is [1, *output_shape]
    std::vector<int64_t> shape{num_samples};
    for (auto s : problem.prior().data_shape()) shape.push_back(s);
    out.samples = x.expand(shape).contiguous();
    out.diverged.assign(static_cast<size_t>(num_samples), 0);
    out.sampling_seconds = clock.seconds();
    return out;
  }
};

SamplerRegistrar reg_classical({"pseudo_inverse",
                                "classical baseline: the operator's pseudo-inverse of y (SR: block replication; "
                                "deblur: Tikhonov; inpainting: zero fill), K identical copies; no prior, no NFE",
                                {}, [](const Options&) { return std::make_unique<PseudoInverse>(); }});

}  // namespace
}  // namespace psbench
