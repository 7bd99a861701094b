// LGD (loss-guided diffusion, Song et al. 2023; ALGORITHMS.md §3): DPS whose guidance loss is smoothed
// over m draws x0 ~ N(x0_hat, r_t^2 I) around the x0 estimate (the engine is baselines/dps.cpp).
#include "baselines/guided_diffusion.h"
#include "samplers/driver.h"

namespace psbench {

const OptionSchema<GuidedDiffusionOptions>& GuidedDiffusionOptions::lgd_schema() {
  static const auto s = [] {
    using O = GuidedDiffusionOptions;
    OptionSchema<O> s = dps_schema();
    s.integer(&O::mc_draws, "mc_draws", 1, "m: Monte Carlo draws around x0_hat per step (1 in the CPS runs)").at_least(1);
    s.real(&O::r_scale, "r_scale", 1.0,
           "r_t = r_scale sigma sigma_data / sqrt(sigma^2 + sigma_data^2), the spread of the draws")
        .at_least(0);
    s.choice(&O::aggregate, "aggregate", O::Aggregate::Mean, {{"mean", O::Aggregate::Mean}, {"logmeanexp", O::Aggregate::LogMeanExp}},
             "mean: L = mean_j ||y - A(x0_j)||^2; logmeanexp: L = -2 sigma_y^2 log mean_j exp(-||y - A(x0_j)||^2 / "
             "(2 sigma_y^2)) (LGD-MC)");
    s.check([](const O& o) -> std::string {
      if (o.convention == O::Convention::Cps && o.aggregate != O::Aggregate::Mean)
        return "convention=cps sums unsquared norms over the draws; it takes no aggregate=logmeanexp";
      return "";
    });
    return s;
  }();
  return s;
}

namespace {
SamplerRegistrar reg_lgd(kernel_entry<GuidedDiffusion>(
    "lgd", "LGD: DPS with the guidance loss averaged over m draws N(x0_hat, r_t^2 I); one run per sample. Budget B per "
    "measurement: steps = floor(B / (K c)), c as DPS (the draws cost nothing)",
    GuidedDiffusionOptions::lgd_schema(), [](const GuidedDiffusionOptions& o) { return GuidedDiffusion("lgd", o); }));
}  // namespace

}  // namespace psbench
