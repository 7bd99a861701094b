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

class NoiseLangevin : public NoiseKernel<NoiseLangevin, NoiseLangevinOptions> {
 public:
  static constexpr bool kMcmc = false;
  explicit NoiseLangevin(Options o) : NoiseKernel("noise_langevin", o) {}
  Adaptation adaptation() const { return {}; }
  std::string settings() const { return "step_size=" + format_value(o_.step_size); }

  State enter_chain(State s, const StepContext& ctx) const { return evaluate_noise(s.z, ctx, o_.prior_scale, true); }
  Step<State> chain_step(State s, const StepContext& ctx) const {
    Step<State> out;
    out.info.add("chain_loss", s.r);
    auto xi = ctx.rng.normal(ctx.problem.generator("").latent_shape());
    auto z = s.z - o_.step_size * s.grad + std::sqrt(2.0 * o_.step_size) * xi;
    // The last iterate's gradient is never used: a forward pass only.
    out.state = evaluate_noise(z, ctx, o_.prior_scale, !ctx.last);
    return out;
  }
};

SamplerRegistrar reg_noise_langevin(kernel_entry<NoiseLangevin>(
    "noise_langevin", "noise-space Langevin (CPS): Adam warm start on the data fit, then unadjusted Langevin on z of Phi. "
    "Budget B per measurement: " + std::string(kNoiseBudgetRule)));

}  // namespace
}  // namespace psbench
