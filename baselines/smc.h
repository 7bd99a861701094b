#pragma once
// Pieces shared by the sequential Monte Carlo samplers (MCGdiff, and the SMC samplers after it): one
// sampler "chain" is one particle system of P particles, so a batch of B runs holds [B, P, ...] tensors
// and everything here works row by row. Log-weights are float64 whatever the prior's dtype.
#include <ATen/ATen.h>

#include <cmath>
#include <string>

#include "core/option_schema.h"
#include "samplers/kernel.h"

namespace psbench {

// The options every SMC sampler shares (each sampler's schema includes them with OptionSchema::group).
struct SmcOptions {
  enum class Resampling { Multinomial, Systematic };
  int64_t particles = 256;
  int64_t samples_per_run = 1;  // draws from one run's final weighted particles
  double resample_ess = 1.0;    // resample when ESS < resample_ess * P (1: at every step)
  Resampling resampling = Resampling::Multinomial;
  static const OptionSchema<SmcOptions>& schema() {
    static const auto s = [] {
      using O = SmcOptions;
      OptionSchema<O> s;
      s.integer(&O::particles, "particles", 256, "P: particles of one SMC run").at_least(1);
      s.integer(&O::samples_per_run, "samples_per_run", 1,
                "posterior samples drawn (with replacement, by the final weights) from one run's particles; the "
                "samples of one run are dependent, so 1 gives independent samples")
          .at_least(1);
      s.real(&O::resample_ess, "resample_ess", 1.0,
             "resample when the effective sample size falls below this fraction of P (1: at every step)")
          .above(0)
          .at_most(1);
      s.choice(&O::resampling, "resampling", Resampling::Multinomial,
               {{"multinomial", Resampling::Multinomial}, {"systematic", Resampling::Systematic}},
               "ancestor draws: multinomial (independent) or systematic (one uniform per run, lower variance)");
      return s;
    }();
    return s;
  }
};

// Effective sample size (sum w)^2 / sum w^2 of log-weights [B, P], per row [B].
inline at::Tensor smc_ess(const at::Tensor& logw) {
  auto w = at::softmax(logw, 1);
  return 1.0 / w.pow(2).sum(1);
}

// n ancestor indices per row [B, n] drawn from the normalised weights of logw [B, P]. `normals` [B, n] are
// standard normal draws of each run's own generator (ChainRng); they become uniforms through the normal CDF,
// so that every draw stays with its chain. Systematic resampling uses only column 0.
inline at::Tensor smc_ancestors(const at::Tensor& logw, const at::Tensor& normals, SmcOptions::Resampling how) {
  const int64_t b = logw.size(0), p = logw.size(1), n = normals.size(1);
  auto cdf = at::softmax(logw, 1).cumsum(1);
  cdf = cdf / cdf.select(1, p - 1).unsqueeze(1);  // the last entry exactly 1
  auto u = 0.5 * at::erfc(-normals.to(at::kDouble) / std::sqrt(2.0));  // Phi(z): uniform on (0, 1)
  if (how == SmcOptions::Resampling::Systematic) {
    auto grid = at::arange(n, at::TensorOptions().dtype(at::kDouble)).unsqueeze(0);
    u = (grid + u.narrow(1, 0, 1)) / static_cast<double>(n);
  }
  return at::searchsorted(cdf.contiguous(), u.contiguous()).clamp_max(p - 1).view({b, n});
}

// Rows of x [B, P, ...] picked by idx [B, n] -> [B, n, ...].
inline at::Tensor smc_gather(const at::Tensor& x, const at::Tensor& idx) {
  auto shape = x.sizes().vec();
  shape[1] = idx.size(1);
  auto flat = x.reshape({x.size(0), x.size(1), -1});
  auto picked = flat.gather(1, idx.unsqueeze(2).expand({idx.size(0), idx.size(1), flat.size(2)}));
  return picked.reshape(shape);
}

}  // namespace psbench
