// Preconditioned Crank-Nicolson in noise space: the proposal z' = sqrt(1 - beta^2) z + beta xi leaves
// the N(0, I) prior on z invariant, so the Metropolis-Hastings ratio is the likelihood ratio
// exp(R(Phi(z)) - R(Phi(z'))) alone: forward passes only, no gradient. The driver adapts beta per chain
// (capped at 1) during the first adapt_steps of burn-in when asked.
#include "samplers/driver.h"
#include "samplers/noise_space.h"

namespace psbench {
namespace {

struct NoisePcnOptions {
  NoiseChainOptions chain;
  double beta = 0.1;
  AdaptOptions adapt;
  static const OptionSchema<NoisePcnOptions>& schema() {
    static const auto s = [] {
      using O = NoisePcnOptions;
      OptionSchema<O> s;
      s.group(&O::chain, NoiseChainOptions::schema());
      s.real(&O::beta, "beta", 0.1, "pCN step: z' = sqrt(1 - beta^2) z + beta xi (the initial value when adapting)")
          .above(0)
          .at_most(1);
      s.group(&O::adapt, adapt_schema(0.25, "beta"));
      s.check([](const O& o) {
        return o.adapt.steps > o.chain.burn_in ? "adapt_steps=" + std::to_string(o.adapt.steps) + " exceeds burn_in=" +
                                                     std::to_string(o.chain.burn_in) +
                                                     " (beta may only adapt during burn-in)"
                                               : std::string();
      });
      return s;
    }();
    return s;
  }
};

class NoisePcn {
 public:
  using Options = NoisePcnOptions;
  using State = NoiseState;
  explicit NoisePcn(Options o) : o_(o) {}

  Needs needs() const { return {.generator = true}; }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return o_.chain.chains_for("noise_pcn", n); }
  std::vector<Phase> phases(int64_t per_chain, const Prior&) const {
    return o_.chain.phases(per_chain, {o_.adapt.steps, o_.beta, o_.adapt.target_acceptance, 1.0}, true);
  }
  // The warm start is fwd+bwd; the chain's evaluations are forward passes.
  int64_t planned_nfe(int64_t n, const Prior& prior) const { return o_.chain.planned_nfe(n, prior); }

  State init(const StepContext& ctx) const { return noise_init(ctx); }
  State enter(State s, const StepContext& ctx) const {
    return ctx.phase == 0 ? noise_enter_warmup(std::move(s)) : evaluate_noise(s.z, ctx, 1.0, false);
  }
  Step<State> step(State s, const StepContext& ctx) const {
    if (ctx.phase == 0) return adam_warm_start_step(std::move(s), ctx, o_.chain.warm_start_lr);
    const auto& beta = ctx.step_size;
    auto xi = ctx.rng.normal(ctx.problem.generator("").latent_shape());
    auto log_u = ctx.rng.uniform().log();
    auto b = per_row(beta, s.z);
    auto prop = evaluate_noise((1.0 - b * b).clamp_min(0.0).sqrt() * s.z + b * xi, ctx, 1.0, false);
    auto log_alpha = (s.r - prop.r).to(at::kDouble);
    auto out = mh_accept(std::move(s), std::move(prop), log_alpha, {}, log_u);
    out.info.add("beta", beta);
    return out;
  }
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext&) const { return noise_ok(s, o_.chain.divergence_threshold); }
  std::string divergence(const StepContext&) const {
    return "non-finite or ||z||^2/dim > " + format_value(o_.chain.divergence_threshold) +
           "; beta=" + format_value(o_.beta) + ", adapt_steps=" + std::to_string(o_.adapt.steps) +
           ", warm_start_lr=" + format_value(o_.chain.warm_start_lr);
  }

 private:
  Options o_;
};

SamplerRegistrar reg(kernel_entry<NoisePcn>(
    "noise_pcn",
    "preconditioned Crank-Nicolson in noise space: z' = sqrt(1-beta^2) z + beta xi, accepted with the likelihood "
    "ratio (forward passes only)"));

}  // namespace
}  // namespace psbench
