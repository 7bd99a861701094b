// Metropolis-adjusted Langevin (MALA) in noise space (ALGORITHMS.md §1, "natural extensions"): the
// Langevin proposal z' = z - h grad U(z) + sqrt(2h) xi on U(z) = prior_scale ||z||^2/2 + R(Phi(z)),
// accepted with the Metropolis-Hastings ratio, so the chain leaves pi(z) ∝ exp(-U(z)) exactly
// invariant (noise-space Langevin without the correction has an O(h) bias). The driver adapts h per
// chain by dual averaging during the first adapt_steps of burn-in when asked.
#include "samplers/driver.h"
#include "samplers/noise_space.h"

namespace psbench {
namespace {

struct NoiseMalaOptions {
  NoiseChainOptions chain;
  double step_size = 1e-4;  // h (initial value when adapting)
  double prior_scale = 1.0;
  AdaptOptions adapt;
  static const OptionSchema<NoiseMalaOptions>& schema() {
    static const auto s = [] {
      using O = NoiseMalaOptions;
      OptionSchema<O> s;
      s.group(&O::chain, NoiseChainOptions::schema());
      s.real(&O::step_size, "step_size", 1e-4, "h: proposal step (the initial value when adapt_steps > 0)").above(0);
      s.real(&O::prior_scale, "prior_scale", 1.0, "weight of the N(0, I) prior term of U(z)").above(0);
      s.group(&O::adapt, adapt_schema(0.574, "h"));
      s.check([](const O& o) { return adapt_within_burn_in(o.adapt, o.chain, "the step size"); });
      return s;
    }();
    return s;
  }
};

class NoiseMala : public NoiseKernel<NoiseMala, NoiseMalaOptions> {
 public:
  static constexpr bool kMcmc = true;
  explicit NoiseMala(Options o) : NoiseKernel("noise_mala", o) {}
  Adaptation adaptation() const { return {o_.adapt.steps, o_.step_size, o_.adapt.target_acceptance}; }
  std::string settings() const {
    return "step_size=" + format_value(o_.step_size) + ", adapt_steps=" + std::to_string(o_.adapt.steps);
  }

  State enter_chain(State s, const StepContext& ctx) const { return evaluate_noise(s.z, ctx, o_.prior_scale, true); }
  Step<State> chain_step(State s, const StepContext& ctx) const {
    const auto& h = ctx.step_size;
    auto xi = ctx.rng.normal(ctx.problem.generator("").latent_shape());
    auto log_u = ctx.rng.uniform().log();
    auto hb = per_row(h, s.z);
    auto prop = evaluate_noise(s.z - hb * s.grad + (2.0 * hb).sqrt() * xi, ctx, o_.prior_scale, true);
    // log q(z | z') - log q(z' | z), q(a | b) = N(a; b - h grad U(b), 2h I).
    auto back = (s.z - prop.z + hb * prop.grad).flatten(1).pow(2).sum(1) / (4.0 * h);
    auto fwd = 0.5 * xi.flatten(1).pow(2).sum(1);
    auto log_alpha = (s.u - prop.u - back + fwd).to(at::kDouble);
    auto valid = at::isfinite(prop.grad.flatten(1)).all(1);
    auto out = mh_accept(std::move(s), std::move(prop), log_alpha, valid, log_u);
    out.info.add("step_size", h);
    return out;
  }
};

SamplerRegistrar reg_noise_mala(kernel_entry<NoiseMala>(
    "noise_mala",
    "MALA in noise space: Langevin proposals on z of Phi with a Metropolis-Hastings correction (exact for pi(z)); "
    "optional dual-averaging step size. Budget B per measurement: " + std::string(kNoiseBudgetRule)));

}  // namespace
}  // namespace psbench
