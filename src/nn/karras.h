#pragma once
// The Karras et al. (EDM) noise-level grid. It lives below both the network trainers (consistency
// distillation discretises the probability-flow ODE on it) and the priors (ODE generators integrate on
// it), so neither has to include the other.
#include <cstdint>
#include <vector>

namespace psbench {

// Karras grid sigma_0 = sigma_max > ... > sigma_{n-1} = sigma_min, followed by sigma_n = 0:
// sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.
std::vector<double> karras_sigmas(int64_t steps, double sigma_min, double sigma_max, double rho = 7.0);

}  // namespace psbench
