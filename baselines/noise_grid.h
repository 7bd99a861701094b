#pragma once
// The noise levels a reverse-diffusion baseline walks down, as an option shared by DPS, LGD, PiGDM, DDRM, DDNM(+),
// DiffPIR, MCGdiff, FPS and TDS (`grid`):
//   karras (psbench's default): sigma_max > ... > sigma_min of the prior's denoiser on the Karras et al. grid
//     (rho = 7), then 0;
//   vp_linear: S of the timesteps of a variance-preserving DDPM with the linear beta schedule (Ho et al. 2020:
//     T = 1000, beta_t from 1e-4 to 0.02 linearly over t = 1..T), evenly spaced from t = T to t = 1 (t_k = 1 +
//     round(k (T - 1) / (S - 1))), read in psbench's variance-exploding frame as sigma_t = sqrt(1/abar_t - 1)
//     (x_sigma = x_t / sqrt(abar_t)), largest first, then 0: the variance-preserving DDIM discretisation of the
//     published Gaussian-mixture benchmark (MCGdiff, Cardoso et al. 2024). Every S starts at t = T (sigma 157),
//     where x_T ~ N(0, I) is the right start; DDIM's "leading" spacing t = 1 + k floor(T/S) would start lower
//     (sigma 97 at S = 20), too low for the mixtures at d = 800 (README). Its levels ignore the denoiser's range,
//     so it suits priors whose denoiser is exact at every level (the analytic mixtures), not networks trained up
//     to sigma 80.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/option_schema.h"
#include "nn/karras.h"
#include "priors/prior.h"

namespace psbench {

enum class NoiseGrid { Karras, VpLinear };

inline constexpr int64_t kVpTimesteps = 1000;

// The timestep of level k of S (k = 0 is the noisiest): T, ..., 1 evenly spaced, rounded (S <= T).
inline int64_t vp_timestep(int64_t k, int64_t steps) {
  if (steps == 1) return kVpTimesteps;
  return kVpTimesteps - std::llround(static_cast<double>(k * (kVpTimesteps - 1)) / static_cast<double>(steps - 1));
}

// sigma_t = sqrt(1/abar_t - 1) at S of the T = 1000 linear-beta timesteps (vp_timestep), largest first, then 0.
inline std::vector<double> vp_linear_sigmas(int64_t steps) {
  std::vector<double> log_abar(static_cast<size_t>(kVpTimesteps) + 1, 0.0);  // log abar_t, t = 0..T
  for (int64_t t = 1; t <= kVpTimesteps; ++t) {
    const double beta = 1e-4 + (0.02 - 1e-4) * static_cast<double>(t - 1) / static_cast<double>(kVpTimesteps - 1);
    log_abar[static_cast<size_t>(t)] = log_abar[static_cast<size_t>(t - 1)] + std::log1p(-beta);
  }
  std::vector<double> s;
  for (int64_t k = 0; k < steps; ++k) s.push_back(std::sqrt(std::expm1(-log_abar[static_cast<size_t>(vp_timestep(k, steps))])));
  s.push_back(0.0);
  return s;
}

// The grid of a `steps`-step run of `sampler` on the prior's denoiser `den`: steps levels, then 0.
inline std::vector<double> reverse_sigmas(NoiseGrid grid, int64_t steps, const Denoiser& den, const std::string& sampler) {
  if (grid == NoiseGrid::Karras) return karras_sigmas(steps, den.sigma_min(), den.sigma_max());
  if (steps > kVpTimesteps)
    throw ConfigError("sampler " + sampler + ": grid vp_linear has " + std::to_string(kVpTimesteps) +
                      " timesteps, and steps=" + std::to_string(steps) + " asks for more");
  return vp_linear_sigmas(steps);
}

template <class O>
void add_noise_grid(OptionSchema<O>& s, NoiseGrid O::*field) {
  s.choice(field, "grid", NoiseGrid::Karras, {{"karras", NoiseGrid::Karras}, {"vp_linear", NoiseGrid::VpLinear}},
           "noise levels: karras (the denoiser's sigma_max to sigma_min, rho 7) or vp_linear (a linear-beta DDPM's "
           "timesteps T = 1000 down to 1 evenly spaced, sigma = sqrt(1/abar - 1): the published Gaussian-mixture "
           "benchmark's variance-preserving DDIM)")
      .added_later();
}

}  // namespace psbench
