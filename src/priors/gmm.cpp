#include "priors/gmm.h"

#include <cmath>

#include "core/linalg.h"
#include "core/errors.h"
#include "core/rng.h"

namespace psbench {

namespace {

at::Tensor grid_means(int64_t dim, int64_t grid, double spacing) {
  // Component (i, j) has mean (a_i, a_j, a_i, a_j, ...).
  auto m = at::empty({grid * grid, dim}, kF64);
  auto acc = m.accessor<double, 2>();
  for (int64_t i = 0; i < grid; ++i)
    for (int64_t j = 0; j < grid; ++j)
      for (int64_t c = 0; c < dim; ++c) {
        double ai = spacing * (static_cast<double>(i) - 0.5 * static_cast<double>(grid - 1));
        double aj = spacing * (static_cast<double>(j) - 0.5 * static_cast<double>(grid - 1));
        acc[i * grid + j][c] = (c % 2 == 0) ? ai : aj;
      }
  return m;
}

// ||x_b - mu_k||^2 as [B, K] through one matrix product (the [B, K, d] difference tensor is too slow
// at d = 800). In float64 the cancellation error is ~1e-16 * ||x||^2, negligible at these scales.
at::Tensor sq_dists(const at::Tensor& x, const at::Tensor& mu) {
  return (x.pow(2).sum(1, true) - 2 * x.matmul(mu.t()) + mu.pow(2).sum(1).unsqueeze(0)).clamp_min(0);
}

}  // namespace

GaussianMixture::GaussianMixture(const GmmParams& p, uint64_t seed)
    : dim_(p.dim), variance_(p.variance), sigma_max_(p.sigma_max) {
  means_ = grid_means(p.dim, p.grid, p.spacing);
  const int64_t k = p.grid * p.grid;
  if (p.weights == "uniform") {
    weights_ = at::full({k}, 1.0 / static_cast<double>(k), kF64);
  } else if (p.weights == "chi2") {
    // The MCGdiff benchmark's weights: w_k ∝ chi-square(1) draws, i.e. squares of standard normals.
    auto gen = make_generator(seed);
    auto z2 = at::randn({k}, gen, kF64).pow(2);
    weights_ = z2 / z2.sum();
  } else {
    auto gen = make_generator(seed);
    auto u = at::rand({k}, gen, kF64);
    weights_ = u / u.sum();
  }
  init(p.ode_steps, p.start);
}

GaussianMixture::GaussianMixture(at::Tensor means, at::Tensor weights, double variance, int64_t ode_steps,
                                 double sigma_max, const std::string& start)
    : dim_(means.size(1)), means_(means.to(at::kDouble)), weights_(weights.to(at::kDouble)),
      variance_(variance), sigma_max_(sigma_max) {
  weights_ = weights_ / weights_.sum();
  init(ode_steps, start);
}

void GaussianMixture::init(int64_t ode_steps, const std::string& start) {
  const auto cov = covariance();  // the prior's spread and the moment-matched start both need it
  sigma_data_ = std::sqrt(cov.diagonal().mean().item<double>());
  if (start == "moment_matched") {
    // p_sigma_max is a mixture whose spread is tiny next to sigma_max; a Gaussian with its exact mean
    // and covariance is a far better start than N(0, sigma_max^2 I), which ignores the prior mean.
    start_mean_ = mean();
    start_sqrt_ = spd_sqrt(cov + sigma_max_ * sigma_max_ * at::eye(dim_, kF64));
  } else if (start == "edm") {
    start_mean_ = at::zeros({dim_}, kF64);
    start_sqrt_ = sigma_max_ * at::eye(dim_, kF64);
  } else {
    throw ConfigError("prior gmm: unknown start '" + start + "' (known: moment_matched, edm)");
  }
  auto m = start_mean_;
  auto l = start_sqrt_;
  generator_ = std::make_unique<OdeGenerator>(
      *this, Shape{dim_}, ode_steps, 7.0, [m, l](const at::Tensor& z) { return m + z.matmul(l.t()); });
  consistency_ = std::make_unique<OdeConsistency>(*this, ode_steps, 7.0);
}

at::Tensor GaussianMixture::mean() const { return weights_.matmul(means_); }

at::Tensor GaussianMixture::covariance() const {
  auto c = means_ - mean();
  return variance_ * at::eye(dim_, kF64) + (c.t() * weights_).matmul(c);
}

at::Tensor GaussianMixture::responsibilities(const at::Tensor& x, double sigma) const {
  const double var = variance_ + sigma * sigma;
  auto d2 = sq_dists(x, means_);
  return at::softmax(weights_.log() - d2 / (2 * var), 1);
}

at::Tensor GaussianMixture::log_density(const at::Tensor& x, double sigma) const {
  const double var = variance_ + sigma * sigma;
  auto d2 = sq_dists(x, means_);  // [B, K]
  auto logn = -d2 / (2 * var) - 0.5 * static_cast<double>(dim_) * std::log(2 * M_PI * var);
  return at::logsumexp(weights_.log() + logn, 1);
}

at::Tensor GaussianMixture::denoise(const at::Tensor& x, const at::Tensor& sigma) const {
  // E[x0 | x] = sum_k r_k(x) (mu_k + v/(v+s^2) (x - mu_k)) = (v x + s^2 mbar) / (v + s^2).
  auto s2 = sigma.to(x.scalar_type()).pow(2).unsqueeze(1);  // [B, 1]
  auto var = variance_ + s2;
  auto mu = means_.to(x.scalar_type());
  auto d2 = sq_dists(x, mu);  // [B, K]
  auto r = at::softmax(weights_.log().to(x.scalar_type()) - d2 / (2 * var), 1);
  auto mbar = r.matmul(mu);
  return (variance_ * x + s2 * mbar) / var;
}

at::Tensor GaussianMixture::score(const at::Tensor& x, double sigma) const {
  // grad log sum_k w_k N(x; mu_k, (v + s^2) I) = -(x - sum_k r_k mu_k) / (v + s^2).
  auto mbar = responsibilities(x, sigma).matmul(means_.to(x.scalar_type()));
  return -(x - mbar) / (variance_ + sigma * sigma);
}

at::Tensor GaussianMixture::sample(int64_t n, at::Generator& gen) const {
  auto k = at::multinomial(weights_, n, /*replacement=*/true, gen);
  return means_.index_select(0, k) + std::sqrt(variance_) * at::randn({n, dim_}, gen, kF64);
}

std::map<std::string, std::string> GaussianMixture::provenance() const {
  std::string w;
  auto acc = weights_.accessor<double, 1>();
  for (int64_t i = 0; i < weights_.size(0); ++i) w += (i ? "," : "") + format_value(acc[i]);
  return {{"gmm_weights", w}};
}

namespace {

// Posterior of a mixture of N(mu_k, v I) under y = A x + sigma_y n:
// Sigma = (I/v + A^T A / s^2)^-1, m_k = Sigma (A^T y / s^2 + mu_k / v),
// pi_k ∝ w_k N(y; A mu_k, s^2 I + v A A^T).
class GmmPosterior : public ExactPosterior {
 public:
  GmmPosterior(const GaussianMixture& prior, const at::Tensor& a, double sigma_y, const at::Tensor& y) {
    const int64_t d = prior.means().size(1), m = a.size(0);
    const double v = prior.variance(), s2 = sigma_y * sigma_y;
    auto yv = y.reshape({m}).to(at::kDouble);
    precision_ = at::eye(d, kF64) / v + a.t().matmul(a) / s2;
    cov_ = at::linalg_inv(precision_);
    cov_ = 0.5 * (cov_ + cov_.t());
    chol_ = at::linalg_cholesky(cov_);
    means_ = (a.t().matmul(yv) / s2).unsqueeze(0) + prior.means() / v;  // [K, d]
    means_ = means_.matmul(cov_);                                       // Sigma symmetric
    auto cy = s2 * at::eye(m, kF64) + v * a.matmul(a.t());
    auto ly = at::linalg_cholesky(cy);
    auto resid = yv.unsqueeze(0) - prior.means().matmul(a.t());  // [K, m]
    auto white = at::linalg_solve_triangular(ly, resid.t(), /*upper=*/false).t();
    auto loglik = -0.5 * white.pow(2).sum(1);  // common normalisation cancels
    log_weights_ = at::log_softmax(prior.weights().log() + loglik, 0);
  }
  at::Tensor sample(int64_t n, at::Generator& gen) const override {
    auto k = at::multinomial(log_weights_.exp(), n, true, gen);
    auto xi = at::randn({n, means_.size(1)}, gen, kF64);
    return means_.index_select(0, k) + xi.matmul(chol_.t());
  }
  at::Tensor mean() const override { return log_weights_.exp().matmul(means_); }
  at::Tensor marginal_variance() const override {
    auto pi = log_weights_.exp();
    auto c = means_ - mean();
    return at::diagonal(cov_) + pi.matmul(c.pow(2));
  }
  at::Tensor component_weights() const override { return log_weights_.exp(); }
  at::Tensor assign_components(const at::Tensor& x) const override {
    auto diff = x.to(at::kDouble).unsqueeze(1) - means_.unsqueeze(0);  // [n, K, d]
    auto maha = (diff.matmul(precision_) * diff).sum(2);
    return (log_weights_ - 0.5 * maha).argmax(1);
  }
  const at::Tensor& covariance() const { return cov_; }

 private:
  at::Tensor precision_, cov_, chol_, means_, log_weights_;
};

}  // namespace

std::unique_ptr<ExactPosterior> GaussianMixture::exact_posterior(const Operator& op, double sigma_y,
                                                                 const at::Tensor& y) const {
  if (!op.is_linear() || !op.has_matrix()) return nullptr;
  return std::make_unique<GmmPosterior>(*this, op.matrix().to(at::kDouble), sigma_y, y);
}

namespace {
PriorRegistrar reg_gmm(
    {"gmm",
     "exact Gaussian mixture (MCGdiff): grid^2 components N(mu_k, v I), exact score, ODE generator, exact posterior",
     {OptionSpec::integer("dim", 8, "dimension d (means repeat the 2-D grid pattern)").at_least(2),
      OptionSpec::integer("grid", 5, "grid points per axis; grid^2 components").at_least(1),
      OptionSpec::real("spacing", 8.0, "distance between neighbouring means").above(0),
      OptionSpec::real("variance", 1.0, "component variance v").above(0),
      OptionSpec::choice("weights", "random", {"random", "uniform", "chi2"},
                         "random: w_k ∝ U[0,1] drawn from the experiment seed; uniform: 1/K; chi2: w_k ∝ chi-square(1) "
                         "draws (the MCGdiff benchmark's)"),
      OptionSpec::integer("ode_steps", 32, "Heun steps of the generator Phi (2*steps-1 score evaluations)")
          .at_least(1),
      OptionSpec::real("sigma_max", 80.0, "noise level where the generator starts").above(0),
      OptionSpec::choice("start", "moment_matched", {"moment_matched", "edm"},
                         "x_T = mean + (Cov + sigma_max^2 I)^(1/2) z, or the EDM x_T = sigma_max z")},
     [](const Options& o, uint64_t seed) -> std::unique_ptr<Prior> {
       GmmParams p;
       p.dim = o.get_int("dim");
       p.grid = o.get_int("grid");
       p.spacing = o.get_real("spacing");
       p.variance = o.get_real("variance");
       p.weights = o.get_string("weights");
       p.ode_steps = o.get_int("ode_steps");
       p.sigma_max = o.get_real("sigma_max");
       p.start = o.get_string("start");
       return std::make_unique<GaussianMixture>(p, seed);
     }});
}  // namespace

}  // namespace psbench
