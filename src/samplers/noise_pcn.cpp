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
      s.check([](const O& o) { return adapt_within_burn_in(o.adapt, o.chain, "beta"); });
      return s;
    }();
    return s;
  }
};

class NoisePcn : public NoiseKernel<NoisePcn, NoisePcnOptions> {
 public:
  static constexpr bool kMcmc = true;
  explicit NoisePcn(Options o) : NoiseKernel("noise_pcn", o) {}
  Adaptation adaptation() const { return {o_.adapt.steps, o_.beta, o_.adapt.target_acceptance, 1.0}; }
  std::string settings() const {
    return "beta=" + format_value(o_.beta) + ", adapt_steps=" + std::to_string(o_.adapt.steps);
  }

  // The chain needs no gradient: forward passes of Phi only.
  State enter_chain(State s, const StepContext& ctx) const { return evaluate_noise(s.z, ctx, 1.0, false); }
  Step<State> chain_step(State s, const StepContext& ctx) const {
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
};

SamplerRegistrar reg_noise_pcn(kernel_entry<NoisePcn>(
    "noise_pcn",
    "preconditioned Crank-Nicolson in noise space: z' = sqrt(1-beta^2) z + beta xi, accepted with the likelihood "
    "ratio (forward passes only). Budget B per measurement: " + std::string(kNoiseBudgetRule)));

}  // namespace
}  // namespace psbench
