// PiGDM (baselines/pigdm.cpp) on a Gaussian prior of unit variance, where its likelihood approximation is exact:
// its samples must follow the closed-form law of its ancestral sampler with the exact conditional score, which is
// within a discretisation bias of the posterior.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/rng.h"
#include "nn/karras.h"
#include "operators/lowrank.h"
#include "operators/svd.h"
#include "priors/gmm.h"
#include "samplers/sampler.h"
#include "test_util.h"

using namespace psbench;
using namespace psbench::testing;

namespace {

struct PigdmLaw {
  double mean, var;
};

// The law of x0 from PiGDM's sampler on one spectral coordinate (singular value s, 0 off the range) of the prior
// N(mu, 1): every step is affine in x, x' = alpha x + beta + sqrt(v) xi, with x0_hat = k x + (1 - k) mu,
// k = 1 / (1 + sigma^2), r^2 = sigma^2 k and g = k s (y - s x0_hat) / (r^2 s^2 + sigma_y^2); start N(0, sigma_0^2).
PigdmLaw pigdm_law(double y, double s, double sigma_y, double mu, const std::vector<double>& sig) {
  double m = 0, var = sig[0] * sig[0];
  for (size_t i = 0; i + 1 < sig.size(); ++i) {
    const double s2 = sig[i] * sig[i], n2 = sig[i + 1] * sig[i + 1];
    const double a = n2 / s2, v = n2 * (1 - a), k = 1 / (1 + s2), q = s2 * k * s * s + sigma_y * sigma_y;
    const double alpha = a + (1 - a) * k - (s2 - n2) * k * k * s * s / q;
    const double beta = (1 - a) * (1 - k) * mu + (s2 - n2) * k * s * (y - s * (1 - k) * mu) / q;
    m = alpha * m + beta;
    var = alpha * alpha * var + v;
  }
  return {m, var};
}

}  // namespace

TEST_CASE("PiGDM follows its closed-form law on a Gaussian prior near the exact posterior", "[baselines][statistical]") {
  auto gen = make_generator(11);
  const auto mu0 = at::tensor({1.0, -1.0, 0.5, 2.0}, at::TensorOptions().dtype(at::kDouble));
  GaussianMixture prior(mu0.view({1, 4}), at::ones({1}, at::TensorOptions().dtype(at::kDouble)), 1.0);
  LowRankOperator op(4, 2, gen);
  GaussianNoise noise{0.3};
  auto y = noise.sample(op.forward(prior.sample(1, gen)), gen);
  Problem problem(prior, op, noise, y);
  const int64_t k = 2000, steps = 100;
  auto out = make_sampler("pigdm", {{"steps", steps}})->run(problem, k, chain_seeds(k, 4));
  REQUIRE(out.samples.size(0) == k);
  CHECK(out.sampling_nfe.forward_backward == k * steps);
  CHECK(out.sampling_nfe.forward == 0);
  const auto svd = op.svd();
  const auto coords = svd->vt(out.samples.to(at::kDouble));
  const auto mean = coords.mean(0), var = coords.var(0);
  const auto ybar = svd->ut(y.to(at::kDouble))[0], mubar = svd->vt(mu0.view({1, 4}))[0];
  const auto& den = problem.denoiser("pigdm");
  const auto sig = karras_sigmas(steps, den.sigma_min(), den.sigma_max());
  for (int64_t i = 0; i < 4; ++i) {
    const bool observed = i < svd->rank();
    const double s = observed ? svd->singular_values()[i].item<double>() : 0.0, yi = observed ? ybar[i].item<double>() : 0.0;
    const double mu = mubar[i].item<double>();
    const auto law = pigdm_law(yi, s, noise.sigma_y, mu, sig);
    const double post_var = 1 / (1 + s * s / (noise.sigma_y * noise.sigma_y));
    const double post_mean = post_var * (mu + s * yi / (noise.sigma_y * noise.sigma_y));
    const double m = mean[i].item<double>(), v = var[i].item<double>();
    INFO("coordinate " << i << " (s " << s << "): PiGDM mean " << m << " var " << v << "; its law " << law.mean << ", "
                       << law.var << "; posterior " << post_mean << ", " << post_var);
    CHECK(std::abs(m - law.mean) < 4 * std::sqrt(law.var / k));
    CHECK(std::abs(v - law.var) < 4 * law.var * std::sqrt(2.0 / k));
    // The law itself is the posterior up to the ancestral kernel's discretisation.
    CHECK(std::abs(law.mean - post_mean) < 0.1 * std::sqrt(post_var));
    CHECK(std::abs(law.var / post_var - 1) < 0.2);
  }
}
