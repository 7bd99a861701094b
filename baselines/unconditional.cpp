// The prior alone: K independent draws Phi(z), z ~ N(0, I), from the prior's generator, ignoring y. It is the
// row every posterior sampler must beat (issue 17: "beats the prior alone"), and it is the noise-space samplers'
// starting point: their generator, their cost unit. One generator call (evaluations_per_call NFE) per sample,
// forward only.
#include "samplers/chain_util.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct UnconditionalOptions {
  static const OptionSchema<UnconditionalOptions>& schema() {
    static const OptionSchema<UnconditionalOptions> s;
    return s;
  }
};

class Unconditional {
 public:
  using Options = UnconditionalOptions;
  struct State {
    at::Tensor z, x;
    void keep_rows(const at::Tensor& rows) {
      z = keep_defined_rows(z, rows);
      x = keep_defined_rows(x, rows);
    }
  };
  // Independent draws, not a chain: no chain diagnostics.
  static constexpr bool kDrawsFormChains = false;
  explicit Unconditional(Options) {}

  Needs needs() const { return {.generator = true}; }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return n; }
  std::vector<Phase> phases(int64_t, const Prior&) const { return {Phase::of("prior draw", 1, false, Keep::Last)}; }
  int64_t planned_nfe(int64_t n, const Prior& prior) const { return n * prior.generator()->evaluations_per_call(); }
  BudgetFit fit_budget(int64_t, int64_t, const Prior&) const {
    return {{}, "one generator call per sample: budget ignored"};
  }
  State init(const StepContext& ctx) const {
    const auto& g = ctx.problem.generator("unconditional");
    State s;
    s.z = ctx.rng.normal(g.latent_shape());
    return s;
  }
  State enter(State s, const StepContext&) const { return s; }
  Step<State> step(State s, const StepContext& ctx) const {
    at::NoGradGuard no_grad;
    s.x = ctx.problem.generate(s.z, false, ctx.nfe);
    return {std::move(s), {}};
  }
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext&) const { return at::isfinite(s.x.flatten(1)).all(1); }
  std::string divergence(const StepContext&) const { return "non-finite generator output"; }
};

SamplerRegistrar reg_unconditional(kernel_entry<Unconditional>(
    "unconditional",
    "the prior alone: K draws Phi(z), z ~ N(0, I), of the prior's generator, ignoring y (the floor a posterior "
    "sampler must beat); one generator call per sample, budget ignored"));

}  // namespace
}  // namespace psbench
