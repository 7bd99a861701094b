#pragma once
// Guided reverse diffusion: DPS (Chung et al. 2023, ALGORITHMS.md §2) and LGD (Song et al. 2023, §3).
// Euler-ancestral steps over the Karras grid (rho = 7) from x_T = sigma_max z, each followed by a step
// down the gradient (with respect to x_t) of the residual at an x0 estimate:
//   x_{i+1} = EulerAncestral(x_i; D(x_i, sigma_i)) - zeta_i grad_{x_i} L(x_i),  zeta_i = zeta' / sqrt(L),
// with L = ||y - A(x0_hat)||^2 (DPS). The x0 estimate is the denoiser's Tweedie mean D(x_t, sigma) ("DPS-DM")
// or the prior's consistency function f(x_t, sigma) ("DPS-CM"; the ancestral step still uses D).
// LGD replaces L by an aggregate over m draws x0_hat + r_t eps_j, r_t = r_scale sigma sd / sqrt(sigma^2 + sd^2).
// Every sample is an independent run (chains = samples); a run of S steps costs S forward+backward
// evaluations of the x0 estimator (times its evaluations per call) plus, for DPS-CM, S forward passes of D.
#include "samplers/sampler.h"

namespace psbench {

struct GuidedDiffusionOptions {
  std::string name = "dps";
  int64_t steps = 100;
  double step_scale = 1.0;               // zeta' (paper) or the official code's `scale`
  std::string convention = "paper";      // paper: zeta' grad L / sqrt(L); code: scale grad sqrt(L)
  std::string x0_estimate = "denoiser";  // denoiser | consistency
  int64_t mc_draws = 0;                  // LGD: m draws around x0_hat (0 = DPS)
  double r_scale = 1.0;                  // LGD: multiplies r_t
  std::string aggregate = "mean";        // LGD: mean of the m losses, or logmeanexp (LGD-MC)
  int64_t batch_size = 0;                // execution only
  double divergence_threshold = 1e4;
  static GuidedDiffusionOptions from(const Options& o, const std::string& name);
};

class GuidedDiffusion : public Sampler {
 public:
  explicit GuidedDiffusion(GuidedDiffusionOptions o) : o_(std::move(o)) {}
  int64_t num_chains(int64_t num_samples) const override { return num_samples; }
  int64_t planned_nfe(int64_t num_samples, const Prior& prior) const override;
  SamplerOutput run(const Problem& problem, int64_t num_samples,
                    const std::vector<uint64_t>& chain_seeds) const override;

 private:
  GuidedDiffusionOptions o_;
};

// Options shared by the DPS and LGD registrations.
std::vector<OptionSpec> guided_diffusion_option_specs(double default_scale);

}  // namespace psbench
