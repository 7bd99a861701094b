#pragma once
// Pieces shared by the baselines that run the prior's reverse diffusion once per sample down the Karras grid
// (rho = 7) sigma_0 = sigma_max > ... > sigma_{S-1} = sigma_min > sigma_S = 0, from x = sigma_max z: PiGDM, DDRM,
// DDNM(+) and DiffPIR (DPS and LGD share the budget rule and the divergence test). A run costs c network
// evaluations per step; it is stopped and marked diverged when x is non-finite or its mean square exceeds
// divergence_threshold (sigma^2 + sigma_data^2), the prior's marginal second moment at the next level times the
// threshold. The spectral methods (DDRM, DDNM, DiffPIR) see the measurement in the operator's SVD coordinates.
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "baselines/noise_grid.h"
#include "core/option_schema.h"
#include "nn/karras.h"
#include "operators/svd.h"
#include "samplers/chain_util.h"
#include "samplers/kernel.h"
#include "samplers/sampler.h"

namespace psbench {

// Budget rule of a one-run-per-sample diffusion: steps = floor(B / (K c)).
inline BudgetFit diffusion_fit_budget(const std::string& name, int64_t budget, int64_t n, int64_t c) {
  const int64_t steps = budget / (n * c);
  if (steps < 1)
    throw ConfigError(budget_error(name, budget, n, "one step of each of the " + std::to_string(n) + " runs costs " +
                                                        std::to_string(n * c) + " (" + std::to_string(c) +
                                                        " per step and run)"));
  return {{{"steps", steps}},
          "steps = floor(B / (K c)) = floor(" + std::to_string(budget) + " / (" + std::to_string(n) + " x " +
              std::to_string(c) + ")) = " + std::to_string(steps)};
}

// [B] rows of x that are finite with ||x||^2/dim <= threshold (sigma_next^2 + sigma_data^2).
inline at::Tensor diffusion_ok(const at::Tensor& x, double sigma_next, double sigma_data, double threshold) {
  return finite_and_bounded(x, at::scalar_tensor(threshold * (sigma_next * sigma_next + sigma_data * sigma_data), x.options()));
}

inline std::string diffusion_divergence(double threshold, double sigma) {
  return "non-finite or ||x||^2/dim > " + format_value(threshold) + " (sigma^2 + sigma_data^2), sigma=" +
         format_value(sigma);
}

// The divergence_threshold option, worded the same for every reverse-diffusion baseline.
template <class O>
void add_divergence_threshold(OptionSchema<O>& s, double O::*field) {
  s.real(field, "divergence_threshold", 1e4,
         "a run with ||x||^2/dim above this times (sigma^2 + sigma_data^2), or non-finite, is stopped and marked "
         "diverged")
      .above(0);
}

// The singular_floor option of the baselines whose authors' code descends from DDRM's operators (DDRM, DDNM(+)):
// that code zeroes the singular values of a blur's 1-D matrix below 3e-2, a truncated SVD the papers do not
// mention; for the ill-conditioned blurs it decides whether the noisy measurement is inverted at all.
template <class O>
void add_singular_floor(OptionSchema<O>& s, double O::*field) {
  s.real(field, "singular_floor", 0.0,
         "singular values of the operator below this fraction of the largest count as zero, their directions as "
         "unobserved (0: the full SVD, as the papers; DDRM's and DDNM's code zero a blur's 1-D singular values "
         "below 3e-2, about 9e-4 of the 2-D ones)")
      .at_least(0)
      .at_most(1)
      .added_later();
}

// The measurement seen coordinate by coordinate in the operator's SVD (operators/svd.h): for the r observed
// spectral coordinates, y_bar_i = (U^T y)_i / s_i = x_bar_i + (sigma_y / s_i) eps_i. Float64 [1, r] and [r].
struct SpectralMeasurement {
  at::Tensor ybar;   // [1, r]
  at::Tensor sigma;  // [r]: sigma_y / s_i, the noise level of y_bar_i
  at::Tensor s;      // [r]: the singular values
  int64_t r = 0;
};

inline SpectralMeasurement spectral_measurement(const SvdView& svd, const at::Tensor& y, double sigma_y) {
  SpectralMeasurement m;
  m.r = svd.rank();
  m.s = svd.singular_values().to(at::kDouble);
  m.ybar = svd.ut(y.to(at::kDouble)).narrow(1, 0, m.r) / m.s;
  m.sigma = sigma_y / m.s;
  return m;
}

// Runs of a reverse diffusion on the Karras grid; `svd` and `meas` are set for the spectral methods.
struct DiffusionState {
  at::Tensor x;  // [B, *data] at sigmas[t]
  std::vector<double> sigmas;
  double sigma_data = 0.5;
  std::shared_ptr<const SvdView> svd;
  SpectralMeasurement meas;
  void keep_rows(const at::Tensor& rows) { x = keep_defined_rows(x, rows); }
};

// Everything of a one-run-per-sample reverse diffusion on the operator's SVD view but its step (a kernel with
// another start hides init).
class DiffusionKernel {
 public:
  DiffusionKernel(std::string name, int64_t steps, double divergence_threshold, NoiseGrid grid,
                  int64_t evaluations_per_step = 1, double singular_floor = 0.0)
      : name_(std::move(name)), steps_(steps), threshold_(divergence_threshold), grid_(grid), evals_(evaluations_per_step),
        singular_floor_(singular_floor) {}
  Needs needs() const { return {.denoiser = true, .svd = true}; }
  DiffusionState init(const StepContext& ctx) const { return start(ctx, true); }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return n; }
  std::vector<Phase> phases(int64_t, const Prior&) const { return {Phase::of("reverse diffusion", steps_, false, Keep::Last)}; }
  int64_t planned_nfe(int64_t n, const Prior&) const { return n * steps_ * evals_; }
  BudgetFit fit_budget(int64_t budget, int64_t n, const Prior&) const {
    return diffusion_fit_budget(name_, budget, n, evals_);
  }
  // The grid from the prior's denoiser and x = sigma_max z; with `spectral`, the operator's SVD and the
  // measurement in its coordinates.
  DiffusionState start(const StepContext& ctx, bool spectral) const {
    const auto& den = ctx.problem.denoiser(name_);
    DiffusionState s;
    s.sigmas = reverse_sigmas(grid_, steps_, den, name_);
    s.sigma_data = den.sigma_data();
    s.x = s.sigmas[0] * ctx.rng.normal(ctx.problem.prior().data_shape());
    if (spectral) {
      s.svd = ctx.problem.op().svd();
      if (singular_floor_ > 0) s.svd = s.svd->truncated(singular_floor_);
      s.meas = spectral_measurement(*s.svd, ctx.problem.y(), ctx.problem.noise().sigma_y);
    }
    return s;
  }
  DiffusionState enter(DiffusionState s, const StepContext&) const { return s; }
  at::Tensor sample(const DiffusionState& s) const { return s.x; }
  at::Tensor ok(const DiffusionState& s, const StepContext& ctx) const {
    return diffusion_ok(s.x, s.sigmas[ctx.t + 1], s.sigma_data, threshold_);
  }
  std::string divergence(const StepContext& ctx) const {
    const auto& den = ctx.problem.denoiser(name_);
    return diffusion_divergence(threshold_, reverse_sigmas(grid_, steps_, den, name_)[ctx.t]) +
           " at step " + std::to_string(ctx.t + 1) + " of " + std::to_string(steps_);
  }

 protected:
  // The denoiser's x0_hat = D(x, sigma) without gradients (one forward evaluation per run).
  static at::Tensor denoise(const DiffusionState& s, double sigma, const StepContext& ctx) {
    at::NoGradGuard no_grad;
    return ctx.problem.denoise(s.x, at::full({s.x.size(0)}, sigma, s.x.options()), false, ctx.nfe);
  }
  // The spectral methods' step in the operator's SVD coordinates (float64 [B, n]): x, x0_hat = D(x, sigma) (one
  // forward evaluation per run) and a standard normal draw of each run's generator.
  struct Spectral {
    at::Tensor x, x0, xi;
  };
  static Spectral spectral(const DiffusionState& s, double sigma, const StepContext& ctx) {
    const auto x0 = denoise(s, sigma, ctx);
    return {s.svd->vt(s.x.to(at::kDouble)), s.svd->vt(x0.to(at::kDouble)),
            s.svd->vt(ctx.rng.normal(ctx.problem.prior().data_shape()).to(at::kDouble))};
  }
  // The state back in pixel space from spectral coordinates c [B, n].
  static Step<DiffusionState> from_spectral(DiffusionState s, const at::Tensor& c) {
    s.x = s.svd->v(c).to(s.x.scalar_type());
    return {std::move(s), {}};
  }
  std::string name_;
  int64_t steps_;
  double threshold_;
  NoiseGrid grid_;
  int64_t evals_;
  double singular_floor_;
};

}  // namespace psbench
