#pragma once
// Mixture of probabilistic PCA components (Tipping & Bishop 1999), an exact image prior:
//   p(x) = sum_k w_k N(x; mu_k, C_k),  C_k = W_k W_k^T + s_k^2 I = U_k diag(lambda_k) U_k^T + s_k^2 (I - U_k U_k^T),
// with U_k [d, r] orthonormal and lambda_kj >= s_k^2 (W_k = U_k (diag(lambda_k) - s_k^2 I)^(1/2)).
// Noised at level sigma, component k is N(mu_k, C_k + sigma^2 I): the eigenvalues become lambda + sigma^2
// and s^2 + sigma^2, so the log-density, score and denoiser are closed-form at every sigma with O(d r) work
// per component (Woodbury: no d x d inverse). The generator Phi is the probability-flow ODE with this exact
// score; prior draws and the posterior of any dense linear-Gaussian problem are exact.
//
// Fitted to the Fashion-MNIST training split: one component per class (ML PPCA of the class), or K
// components by EM. Parameters are cached on disk (see ppca_cache_dir()).
#include <string>

#include "priors/ode_generator.h"
#include "priors/prior.h"

namespace psbench {

// Stacked parameters of K components in dimension d with rank r (all float64).
struct PpcaParameters {
  at::Tensor weights;      // [K], sums to one
  at::Tensor means;        // [K, d]
  at::Tensor bases;        // [K, d, r], orthonormal columns U_k
  at::Tensor eigenvalues;  // [K, r], lambda_kj >= residual_k (variance along U_k's columns)
  at::Tensor residual;     // [K], s_k^2 (variance in the orthogonal complement)
  int64_t components() const { return weights.size(0); }
  int64_t dim() const { return means.size(1); }
  int64_t rank() const { return bases.size(2); }
  // Dense covariance C_k [d, d] (tests, one-off set-ups).
  at::Tensor covariance(int64_t k) const;
};

struct PpcaFitOptions {
  std::string source = "per_class";  // per_class | em
  int64_t num_components = 10;       // K for em (per_class: the number of classes)
  int64_t rank = 32;
  double residual_variance = 0;      // s^2; <= 0: ML fit (mean of the discarded eigenvalues)
  int64_t em_iterations = 15;
  uint64_t fit_seed = 0;             // k-means initialisation of em
};

// ML PPCA of one weighted data set: x [N, d], responsibilities r [N] (>= 0) -> mean, U, lambda, s^2.
void fit_ppca_component(const at::Tensor& x, const at::Tensor& r, int64_t rank, double residual_variance,
                        at::Tensor& mean, at::Tensor& basis, at::Tensor& eigenvalues, double& residual);
// One component per distinct label (labels 0..L-1, weights = class frequencies). x [N, d] float64.
PpcaParameters fit_ppca_per_class(const at::Tensor& x, const at::Tensor& labels, int64_t rank,
                                  double residual_variance);
// K components by EM (k-means initialisation, then EM for mixtures of PPCA with the exact M-step of
// each component given the responsibilities). `log` receives one line per iteration when set.
PpcaParameters fit_ppca_em(const at::Tensor& x, int64_t components, int64_t rank, double residual_variance,
                           int64_t iterations, uint64_t seed,
                           const std::function<void(const std::string&)>& log = nullptr);

// log N(x; mu_k, C_k + sigma^2 I) for every component: x [B, d], sigma2 [B] -> [B, K]. Differentiable in x.
at::Tensor ppca_component_log_density(const PpcaParameters& p, const at::Tensor& x, const at::Tensor& sigma2);

// Binary cache of fitted parameters; `key` is stored in the file and checked on load.
void save_ppca(const std::string& path, const std::string& key, const PpcaParameters& p);
// Returns false (and leaves p untouched) when the file is missing or was written for another key;
// throws ConfigError when a file with the right key is damaged.
bool load_ppca(const std::string& path, const std::string& key, PpcaParameters& p);
// Cache directory: `option` when not empty, else $PSBENCH_CACHE_DIR, else $XDG_CACHE_HOME/psbench,
// else $HOME/.cache/psbench, else <source dir>/data/cache.
std::string ppca_cache_dir(const std::string& option);

class PpcaMixture : public Prior, public Denoiser {
 public:
  PpcaMixture(PpcaParameters params, Shape data_shape, int64_t ode_steps = 16, double sigma_max = 80.0,
              const std::string& start = "moment_matched");

  std::string name() const override { return "ppca_mixture"; }
  Shape data_shape() const override { return shape_; }
  // float64: the exact posterior is the reference every sampler is scored against, and the score
  // (D - x) / sigma^2 at sigma_min = 0.002 multiplies rounding errors of D by 2.5e5; float32 would put
  // a numerical floor under the very discrepancies the benchmark measures. The cost is small here
  // (O(B K d r) per evaluation).
  at::ScalarType dtype() const override { return at::kDouble; }
  const Denoiser* denoiser() const override { return this; }
  const Generator* generator() const override { return generator_.get(); }
  // f(x, sigma): the exact-score probability-flow ODE from sigma to 0 with ode_steps Heun steps.
  const ConsistencyFunction* consistency() const override { return consistency_.get(); }
  bool can_sample() const override { return true; }
  at::Tensor sample(int64_t n, at::Generator& gen) const override;
  // Component draws: also returns the component of each draw.
  at::Tensor sample(int64_t n, at::Generator& gen, at::Tensor& components) const;
  std::unique_ptr<ExactPosterior> exact_posterior(const Operator& op, double sigma_y,
                                                  const at::Tensor& y) const override;
  std::map<std::string, std::string> provenance() const override { return provenance_; }
  void add_provenance(const std::string& key, const std::string& value) { provenance_[key] = value; }

  // x [B, *shape], sigma [B] -> E[x0 | x_sigma = x], [B, *shape]. Differentiable in x.
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma) const override;
  double sigma_max() const override { return sigma_max_; }
  // The prior's own spread sqrt(tr Cov / d): the scale of LGD's r_t and of the divergence thresholds.
  double sigma_data() const override { return sigma_data_; }
  at::Tensor score(const at::Tensor& x, double sigma) const;        // grad log p_sigma(x), [B, *shape]
  at::Tensor log_density(const at::Tensor& x, double sigma) const;  // log p_sigma(x), [B]
  at::Tensor responsibilities(const at::Tensor& x, double sigma) const;  // [B, K]

  const PpcaParameters& parameters() const { return p_; }
  at::Tensor mean() const;        // [d]
  at::Tensor covariance() const;  // [d, d] dense

 private:
  PpcaParameters p_;
  Shape shape_;
  double sigma_max_, sigma_data_ = 0.5;
  std::unique_ptr<OdeGenerator> generator_;
  std::unique_ptr<OdeConsistency> consistency_;
  std::map<std::string, std::string> provenance_;
};

// Fits (or loads from the cache) the prior registered as `ppca_mixture` on the Fashion-MNIST training
// split under `root`. `fit_seconds` receives the fit time (0 when loaded).
PpcaParameters fit_or_load_fashion_mnist_ppca(const PpcaFitOptions& fit, const std::string& root,
                                              const std::string& cache_dir, std::string* cache_path = nullptr,
                                              double* fit_seconds = nullptr);

}  // namespace psbench
