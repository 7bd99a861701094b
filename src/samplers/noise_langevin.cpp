// Noise-space Langevin dynamics (CPS; ALGORITHMS.md §1): unadjusted Langevin on the noise z of a
// deterministic generator Phi, targeting pi(z) ∝ N(z; 0, I)^prior_scale · exp(-R(Phi(z))), after an
// Adam warm start on the data fit alone:
//   z <- z - tau grad[prior_scale |z|^2/2 + R(Phi(z))] + sqrt(2 tau) xi.
// Each chain step yields a new posterior sample Phi(z) from the same forward pass that gives the next
// gradient: one forward+backward per sample.
#include <cmath>

#include "samplers/driver.h"
#include "samplers/noise_space.h"

namespace psbench {
namespace {

struct NoiseLangevinOptions {
  NoiseChainOptions chain;
  double step_size = 1e-4;   // tau
  double prior_scale = 1.0;  // 1 = the stated target; 1/sigma_max^2 reproduces the official code
  static const OptionSchema<NoiseLangevinOptions>& schema() {
    static const auto s = [] {
      using O = NoiseLangevinOptions;
      OptionSchema<O> s;
      s.group(&O::chain, NoiseChainOptions::schema());
      s.real(&O::step_size, "step_size", 1e-4, "tau: Langevin step size").above(0);
      s.real(&O::prior_scale, "prior_scale", 1.0,
             "weight of the N(0, I) prior drift; 1/sigma_max^2 = 1.5625e-4 reproduces the official code")
          .above(0);
      return s;
    }();
    return s;
  }
};

class NoiseLangevin {
 public:
  using Options = NoiseLangevinOptions;
  using State = NoiseState;
  explicit NoiseLangevin(Options o) : o_(o) {}

  Needs needs() const { return {.generator = true}; }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return o_.chain.chains_for("noise_langevin", n); }
  std::vector<Phase> phases(int64_t per_chain, const Prior&) const { return o_.chain.phases(per_chain, {}, false); }
  int64_t planned_nfe(int64_t n, const Prior& prior) const { return o_.chain.planned_nfe(n, prior); }

  State init(const StepContext& ctx) const { return noise_init(ctx); }
  State enter(State s, const StepContext& ctx) const {
    return ctx.phase == 0 ? noise_enter_warmup(std::move(s)) : evaluate_noise(s.z, ctx, o_.prior_scale, true);
  }
  Step<State> step(State s, const StepContext& ctx) const {
    if (ctx.phase == 0) return adam_warm_start_step(std::move(s), ctx, o_.chain.warm_start_lr);
    Step<State> out;
    out.info.add("chain_loss", s.r);
    auto xi = ctx.rng.normal(ctx.problem.generator("").latent_shape());
    auto z = s.z - o_.step_size * s.grad + std::sqrt(2.0 * o_.step_size) * xi;
    // The last iterate's gradient is never used: a forward pass only.
    out.state = evaluate_noise(z, ctx, o_.prior_scale, !ctx.last);
    return out;
  }
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext&) const { return noise_ok(s, o_.chain.divergence_threshold); }
  std::string divergence(const StepContext&) const {
    return "non-finite or ||z||^2/dim > " + format_value(o_.chain.divergence_threshold) +
           "; step_size=" + format_value(o_.step_size) + ", warm_start_lr=" + format_value(o_.chain.warm_start_lr);
  }

 private:
  Options o_;
};

SamplerRegistrar reg(kernel_entry<NoiseLangevin>(
    "noise_langevin", "noise-space Langevin (CPS): Adam warm start on the data fit, then unadjusted Langevin on z of Phi"));

}  // namespace
}  // namespace psbench
