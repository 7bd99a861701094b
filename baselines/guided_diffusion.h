#pragma once
// Guided reverse diffusion: DPS (Chung et al. 2023, ALGORITHMS.md §2) and LGD (Song et al. 2023, §3).
// Euler-ancestral steps over the Karras grid (rho = 7) from x_T = sigma_max z, each followed by a step
// down the gradient (with respect to x_t) of the residual at an x0 estimate:
//   x_{i+1} = EulerAncestral(x_i; D(x_i, sigma_i)) - zeta_i grad_{x_i} L(x_i),  zeta_i = zeta' / sqrt(L),
// with L = ||y - A(x0_hat)||^2 (DPS). The x0 estimate is the denoiser's Tweedie mean D(x_t, sigma) ("DPS-DM")
// or the prior's consistency function f(x_t, sigma) ("DPS-CM"; the ancestral step still uses D).
// LGD replaces L by an aggregate over m draws x0_hat + r_t eps_j, r_t = r_scale sigma sd / sqrt(sigma^2 + sd^2).
// convention: cps reproduces the baselines of the noise-space Langevin paper's code instead: x0_hat is
// clamped to [-1, 1] and is also the x0 of the Euler-ancestral step (so DPS-CM and LGD-CM call only the
// consistency model), and the step is
//   x_{i+1} = EulerAncestral(x_i; x0_hat) - zeta sigma_i grad_{x_i} sum_j ||y - A(x0_j)||,
// with x0_j = x0_hat + r_t eps_j, r_t = r_scale sigma / sqrt(1 + sigma^2) for LGD and x0_j = x0_hat for DPS.
// guidance_frame: vp takes the guidance step as the DPS paper does, in the variance-preserving frame
// x_t = sqrt(abar_t) x_sigma with 1 / abar_t = 1 + sigma^2: grad_{x_t} = grad_{x_sigma} / sqrt(abar_t) and the
// step maps back to x_{sigma_{i+1}} through 1 / sqrt(abar_{t-1}), so zeta_i gains sqrt((1 + sigma_i^2)(1 +
// sigma_{i+1}^2)) -- up to 6400 at sigma 80, where the mixture's mode is chosen.
// Every sample is an independent run (chains = samples); a run of S steps costs S forward+backward
// evaluations of the x0 estimator (times its evaluations per call) plus, for DPS-CM, S forward passes of D.
#include <string>
#include <vector>

#include "baselines/noise_grid.h"
#include "core/option_schema.h"
#include "samplers/kernel.h"

namespace psbench {

struct GuidedDiffusionOptions {
  // paper: zeta' grad L / sqrt(L); code: DPS's code, scale grad sqrt(L); cps: the noise-space Langevin
  // paper's code for its DPS/LGD baselines (x0_hat clamped and used for the reverse step too,
  // guidance zeta sigma_i grad ||r||, LGD with unsquared norms summed over draws).
  enum class Convention { Paper, Code, Cps };
  enum class X0 { Denoiser, Consistency };
  enum class Aggregate { Mean, LogMeanExp };
  // ve: the guidance step is taken in the variance-exploding x_sigma psbench samples in; vp: it is taken in the
  // variance-preserving x_t = x_sigma / sqrt(1 + sigma^2) of the DPS paper (DDPM) and mapped back, which
  // multiplies it by sqrt((1 + sigma_i^2)(1 + sigma_{i+1}^2)).
  enum class Frame { Ve, Vp };
  int64_t steps = 100;
  double step_scale = 1.0;  // zeta' (paper) or the official code's `scale`
  Convention convention = Convention::Paper;
  X0 x0_estimate = X0::Denoiser;
  int64_t mc_draws = 0;  // LGD: m draws around x0_hat (0 = DPS)
  double r_scale = 1.0;  // LGD: multiplies r_t
  Aggregate aggregate = Aggregate::Mean;
  Frame guidance_frame = Frame::Ve;
  double divergence_threshold = 1e4;
  NoiseGrid grid = NoiseGrid::Karras;
  static const OptionSchema<GuidedDiffusionOptions>& dps_schema();
  static const OptionSchema<GuidedDiffusionOptions>& lgd_schema();
};

class GuidedDiffusion {
 public:
  using Options = GuidedDiffusionOptions;
  struct State {
    at::Tensor x;                // x_t at the current noise level
    std::vector<double> sigmas;  // the noise grid (`grid`) followed by 0
    double sigma_data = 0.5;
    void keep_rows(const at::Tensor& rows) { x = keep_defined_rows(x, rows); }
  };
  GuidedDiffusion(std::string name, Options o) : name_(std::move(name)), o_(o) {}

  Needs needs() const;
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return n; }
  std::vector<Phase> phases(int64_t, const Prior&) const { return {Phase::of("reverse diffusion", o_.steps, false, Keep::Last)}; }
  int64_t planned_nfe(int64_t n, const Prior& prior) const;
  // Budget rule: steps = floor(B / (K c)), c = the network evaluations of one step (1 for DPS-DM and LGD,
  // consistency_evaluations + 1 for DPS-CM, + 0 under convention cps).
  BudgetFit fit_budget(int64_t budget, int64_t n, const Prior& prior) const;
  State init(const StepContext& ctx) const;
  State enter(State s, const StepContext&) const { return s; }
  Step<State> step(State s, const StepContext& ctx) const;
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext& ctx) const;
  std::string divergence(const StepContext& ctx) const;

 private:
  int64_t evaluations_per_step(const Prior& prior) const;
  std::string name_;
  Options o_;
};

}  // namespace psbench
