// LGD (loss-guided diffusion, Song et al. 2023; ALGORITHMS.md §3): DPS whose guidance loss is smoothed
// over m draws x0 ~ N(x0_hat, r_t^2 I) around the x0 estimate (the engine is in baselines/dps.cpp).
#include "baselines/dps.h"

namespace psbench {
namespace {

std::vector<OptionSpec> lgd_specs() {
  auto specs = guided_diffusion_option_specs(1.0);
  specs.push_back(OptionSpec::integer("mc_draws", 1, "m: Monte Carlo draws around x0_hat per step (1 in the CPS runs)")
                      .at_least(1));
  specs.push_back(OptionSpec::real("r_scale", 1.0,
                                   "r_t = r_scale sigma sigma_data / sqrt(sigma^2 + sigma_data^2), the spread of the draws")
                      .at_least(0));
  specs.push_back(OptionSpec::choice(
      "aggregate", "mean", {"mean", "logmeanexp"},
      "mean: L = mean_j ||y - A(x0_j)||^2; logmeanexp: L = -2 sigma_y^2 log mean_j exp(-||y - A(x0_j)||^2 / (2 sigma_y^2)) "
      "(LGD-MC)"));
  return specs;
}

SamplerRegistrar reg_lgd({"lgd",
                          "LGD: DPS with the guidance loss averaged over m draws N(x0_hat, r_t^2 I); one run per sample",
                          lgd_specs(), [](const Options& o) {
                            return std::make_unique<GuidedDiffusion>(GuidedDiffusionOptions::from(o, "lgd"));
                          }});

}  // namespace
}  // namespace psbench
