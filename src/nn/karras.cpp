#include "nn/karras.h"

#include <cmath>

namespace psbench {

std::vector<double> karras_sigmas(int64_t steps, double sigma_min, double sigma_max, double rho) {
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
