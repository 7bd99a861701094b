#pragma once
// The Karras et al. (EDM) noise-level grid. It lives below both the network trainers (consistency
// distillation discretises the probability-flow ODE on it) and the priors (ODE generators integrate on
// it), so neither has to include the other.
#include <cmath>
#include <cstdint>
#include <vector>

namespace psbench {

// Karras grid sigma_0 = sigma_max > ... > sigma_{n-1} = sigma_min, followed by sigma_n = 0:
// sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.
// Inline, like the other small core headers: a translation unit of its own costs more build time.
inline std::vector<double> karras_sigmas(int64_t steps, double sigma_min, double sigma_max, double rho = 7.0) {
  std::vector<double> s;
  const double a = std::pow(sigma_max, 1.0 / rho), b = std::pow(sigma_min, 1.0 / rho);
  for (int64_t i = 0; i < steps; ++i) {
    double frac = steps == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(steps - 1);
    s.push_back(std::pow(a + frac * (b - a), rho));
  }
  s.push_back(0.0);
  return s;
}

}  // namespace psbench
