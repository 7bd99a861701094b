#pragma once
// Analytic Gaussian-mixture prior of the MCGdiff benchmark (ALGORITHMS.md §7): components
// N(mu_k, v I) with means (a_i, a_j, a_i, a_j, ...) on a grid, a_i = spacing * (i - (g-1)/2).
// Noised at level sigma it is again a mixture N(mu_k, (v + sigma^2) I), so the denoiser, score and
// the probability-flow generator use the exact score; the posterior of a linear-Gaussian problem is
// a mixture in closed form.
#include "priors/ode_generator.h"
#include "priors/prior.h"

namespace psbench {

struct GmmParams {
  int64_t dim = 8;
  int64_t grid = 5;          // points per axis: grid^2 components
  double spacing = 8.0;
  double variance = 1.0;     // v: every component has covariance v I
  std::string weights = "random";  // random (w ∝ U[0,1]), uniform or chi2 (w ∝ chi-square(1) draws)
  int64_t ode_steps = 32;
  double sigma_max = 80.0;
  std::string start = "moment_matched";  // or "edm": x_T = sigma_max z
};

class GaussianMixture : public Prior, public Denoiser {
 public:
  // `seed` draws the random weights; same seed and params -> the same mixture.
  GaussianMixture(const GmmParams& p, uint64_t seed);
  // Explicit means [K, d] and weights [K] (tests, custom set-ups).
  GaussianMixture(at::Tensor means, at::Tensor weights, double variance, int64_t ode_steps = 32,
                  double sigma_max = 80.0, const std::string& start = "moment_matched");

  std::string name() const override { return "gmm"; }
  Shape data_shape() const override { return {dim_}; }
  at::ScalarType dtype() const override { return at::kDouble; }
  const Denoiser* denoiser() const override { return this; }
  const Generator* generator() const override { return generator_.get(); }
  // f(x, sigma): the exact-score probability-flow ODE from sigma to 0 with ode_steps Heun steps.
  const ConsistencyFunction* consistency() const override { return consistency_.get(); }
  bool can_sample() const override { return true; }
  at::Tensor sample(int64_t n, at::Generator& gen) const override;
  std::unique_ptr<ExactPosterior> exact_posterior(const Operator& op, double sigma_y,
                                                  const at::Tensor& y) const override;
  std::map<std::string, std::string> provenance() const override;

  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma) const override;
  double sigma_max() const override { return sigma_max_; }
  // The prior's own spread sqrt(tr Cov / d) (not EDM's 0.5, which the 25-component grid, spread ~11, dwarfs):
  // the scale of LGD's r_t and of the divergence thresholds.
  double sigma_data() const override { return sigma_data_; }
  at::Tensor score(const at::Tensor& x, double sigma) const;
  at::Tensor log_density(const at::Tensor& x, double sigma) const;  // log p_sigma(x), [B]
  at::Tensor responsibilities(const at::Tensor& x, double sigma) const;  // [B, K]

  const at::Tensor& means() const { return means_; }
  const at::Tensor& weights() const { return weights_; }
  double variance() const { return variance_; }
  at::Tensor mean() const;        // [d]
  at::Tensor covariance() const;  // [d, d]

 private:
  void init(int64_t ode_steps, const std::string& start);
  int64_t dim_;
  at::Tensor means_, weights_;
  double variance_, sigma_max_, sigma_data_ = 0.5;
  std::unique_ptr<OdeGenerator> generator_;
  std::unique_ptr<OdeConsistency> consistency_;
  at::Tensor start_mean_, start_sqrt_;
};

}  // namespace psbench
