// The analytic Gaussian mixture: exact denoiser, score, generator and posterior.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/rng.h"
#include "operators/lowrank.h"
#include "priors/gmm.h"
#include "test_util.h"

using namespace psbench;
using namespace psbench::testing;

namespace {

GaussianMixture small_mixture(int64_t dim = 2, int64_t ode_steps = 32) {
  GmmParams p;
  p.dim = dim;
  p.grid = 3;
  p.spacing = 4.0;
  p.ode_steps = ode_steps;
  return GaussianMixture(p, 123);
}
}  // namespace

TEST_CASE("GMM denoiser equals a Monte-Carlo estimate of E(x0 | x_t)", "[gmm]") {
  auto gmm = small_mixture();
  auto gen = make_generator(1);
  const int64_t n = 400000;
  auto x0 = gmm.sample(n, gen);
  for (double sigma : {0.3, 1.0, 3.0, 10.0}) {
    for (int trial = 0; trial < 3; ++trial) {
      // A query point x_t drawn from the noised prior.
      auto xt = gmm.sample(1, gen) + sigma * at::randn({1, 2}, gen, kF64);
      // Self-normalised importance weights w_i ∝ N(x_t; x0_i, sigma^2 I) over prior draws.
      auto logw = -(x0 - xt).pow(2).sum(1) / (2 * sigma * sigma);
      auto w = at::softmax(logw, 0);
      auto est = w.matmul(x0);
      // Delta-method standard error of a ratio estimator: sqrt(sum w_i^2 (x0_i - est)^2).
      auto se = (w.pow(2).unsqueeze(1) * (x0 - est).pow(2)).sum(0).sqrt();
      auto d = gmm.denoise(xt, at::full({1}, sigma, kF64))[0];
      INFO("sigma " << sigma << " x_t " << xt << " D " << d << " MC " << est << " se " << se);
      CHECK(((d - est).abs() <= 4 * se + 1e-9).all().item<bool>());
    }
  }
}

TEST_CASE("GMM score matches finite differences of the exact log density", "[gmm]") {
  auto gmm = small_mixture(3);
  auto gen = make_generator(2);
  for (double sigma : {0.0, 0.5, 2.0, 20.0}) {
    auto x = gmm.sample(4, gen) + (sigma + 0.5) * at::randn({4, 3}, gen, kF64);
    auto s = gmm.score(x, sigma);
    const double h = 1e-5;
    for (int64_t c = 0; c < 3; ++c) {
      auto e = at::zeros({1, 3}, kF64);
      e[0][c] = h;
      auto fd = (gmm.log_density(x + e, sigma) - gmm.log_density(x - e, sigma)) / (2 * h);
      INFO("sigma " << sigma << " coord " << c);
      CHECK(at::allclose(s.select(1, c), fd, 1e-5, 1e-6));
    }
    // The denoiser gives the same score through Tweedie: (D - x) / sigma^2.
    if (sigma > 0) {
      auto tweedie = (gmm.denoise(x, at::full({4}, sigma, kF64)) - x) / (sigma * sigma);
      CHECK(at::allclose(tweedie, s, 1e-8, 1e-10));
    }
  }
}

TEST_CASE("Phi pushes N(0, I) onto the mixture: component masses and moments", "[gmm][slow]") {
  GmmParams p;
  p.dim = 4;  // the MCGdiff grid of 25 components, spacing 8
  GaussianMixture gmm(p, 5);
  auto gen = make_generator(3);
  const int64_t n = 20000;
  auto z = at::randn({n, 4}, gen, kF64);
  at::Tensor x;
  {
    at::NoGradGuard no_grad;
    x = gmm.generator()->generate(z);
  }
  auto exact = gmm.sample(n, gen);
  // Component masses: assignment by exact responsibilities; two-sample binomial test per component.
  auto assign = [&](const at::Tensor& v) {
    return at::bincount(gmm.responsibilities(v, 0.0).argmax(1), {}, 25).to(at::kDouble) / n;
  };
  auto mp = assign(x), me = assign(exact);
  auto pooled = 0.5 * (mp + me);
  auto se = (pooled * (1 - pooled) * (2.0 / n)).sqrt();
  INFO("Phi masses " << mp << " exact " << me << " weights " << gmm.weights());
  CHECK(((mp - me).abs() <= 4.5 * se + 1e-12).all().item<bool>());
  // Moments: mean and per-coordinate variance within Monte-Carlo error of the closed form.
  auto mean = gmm.mean();
  auto var = at::diagonal(gmm.covariance());
  auto xm = x.mean(0);
  auto se_mean = (var / n).sqrt();
  CHECK(((xm - mean).abs() <= 4 * se_mean).all().item<bool>());
  auto xc = x - xm;
  auto xv = xc.pow(2).mean(0);
  auto se_var = ((xc.pow(4).mean(0) - xv.pow(2)) / n).sqrt();
  INFO("Phi var " << xv << " exact " << var);
  CHECK(((xv - var).abs() <= 4 * se_var).all().item<bool>());
  // Within-component spread stays v = 1 (not collapsed by the ODE solver).
  auto r = gmm.responsibilities(x, 0.0).argmax(1);
  auto resid = x - gmm.means().index_select(0, r);
  CHECK(resid.pow(2).mean().item<double>() == Approx(1.0).margin(4 * std::sqrt(2.0 / (n * 4))));
}

TEST_CASE("Phi is differentiable through autograd", "[gmm]") {
  auto gmm = small_mixture(2, 8);
  auto z = at::randn({3, 2}, kF64).requires_grad_(true);
  auto x = gmm.generator()->generate(z);
  x.sum().backward();
  REQUIRE(z.grad().defined());
  CHECK(at::isfinite(z.grad()).all().item<bool>());
  // Gradient agrees with finite differences of the deterministic map.
  at::NoGradGuard no_grad;
  const double h = 1e-6;
  auto e = at::zeros({3, 2}, kF64);
  e.select(1, 0).fill_(h);
  auto fd = (gmm.generator()->generate(z + e).sum(1) - gmm.generator()->generate(z - e).sum(1)) / (2 * h);
  CHECK(at::allclose(z.grad().select(1, 0), fd, 1e-5, 1e-6));
  CHECK(gmm.generator()->evaluations_per_call() == 15);
}

TEST_CASE("Low-rank operator: adjoint identity and structure", "[gmm][operator]") {
  auto gen = make_generator(4);
  for (int64_t d_y : {1, 2, 4}) {
    LowRankOperator op(80, d_y, gen);
    auto x = at::randn({5, 80}, gen, kF64), y = at::randn({5, d_y}, gen, kF64);
    auto lhs = (op.forward(x) * y).sum(), rhs = (x * op.adjoint(y)).sum();
    CHECK(lhs.item<double>() == Approx(rhs.item<double>()).epsilon(1e-10));
    auto s = op.singular_values();
    CHECK((s >= 0).all().item<bool>());
    CHECK((s <= 1).all().item<bool>());
    // Pseudo-inverse: A A^+ y = y for full-row-rank A.
    CHECK(at::allclose(op.forward(op.pseudo_inverse(y)), y, 1e-8, 1e-8));
  }
}

TEST_CASE("Exact GMM posterior: closed form and sampler agree", "[gmm]") {
  auto gmm = small_mixture(3);
  auto gen = make_generator(6);
  LowRankOperator op(3, 2, gen);
  const double sigma_y = 0.7;
  auto x = gmm.sample(1, gen);
  auto y = op.forward(x) + sigma_y * at::randn({1, 2}, gen, kF64);
  auto post = gmm.exact_posterior(op, sigma_y, y);
  REQUIRE(post);

  // Independent closed form (Kalman gain form, per component, plus Bayes for the weights).
  auto a = op.matrix();
  const double v = gmm.variance();
  auto s = v * a.matmul(a.t()) + sigma_y * sigma_y * at::eye(2, kF64);
  auto gain = v * a.t().matmul(at::linalg_inv(s));  // [3, 2]
  auto cov = v * at::eye(3, kF64) - gain.matmul(a) * v;
  const int64_t k = gmm.means().size(0);
  std::vector<double> logw;
  std::vector<at::Tensor> means;
  for (int64_t i = 0; i < k; ++i) {
    auto mu = gmm.means()[i];
    auto r = y[0] - a.matmul(mu);
    means.push_back(mu + gain.matmul(r));
    logw.push_back(std::log(gmm.weights()[i].item<double>()) - 0.5 * r.dot(at::linalg_solve(s, r)).item<double>());
  }
  auto pi = at::softmax(at::tensor(logw, kF64), 0);
  auto m = at::stack(means);
  auto mean = pi.matmul(m);
  auto var = at::diagonal(cov) + pi.matmul((m - mean).pow(2));
  CHECK(at::allclose(post->component_weights(), pi, 1e-9, 1e-12));
  CHECK(at::allclose(post->mean(), mean, 1e-9, 1e-9));
  CHECK(at::allclose(post->marginal_variance(), var, 1e-9, 1e-9));

  // Sampler moments within Monte-Carlo error; full covariance of the mixture.
  const int64_t n = 200000;
  auto xs = post->sample(n, gen);
  auto full_cov = cov + ((m - mean).t() * pi).matmul(m - mean);
  auto se_mean = (at::diagonal(full_cov) / n).sqrt();
  CHECK(((xs.mean(0) - mean).abs() <= 4 * se_mean).all().item<bool>());
  auto xc = xs - xs.mean(0);
  auto emp_cov = xc.t().matmul(xc) / (n - 1);
  // SE of a covariance entry: sqrt((S_ii S_jj + S_ij^2) / n) under near-Gaussianity; mixtures have
  // heavier fourth moments, so use the empirical fourth moments instead.
  auto prod = xc.unsqueeze(2) * xc.unsqueeze(1);  // [n, 3, 3]
  auto se_cov = ((prod - emp_cov).pow(2).mean(0) / n).sqrt();
  INFO("empirical " << emp_cov << " closed form " << full_cov);
  CHECK(((emp_cov - full_cov).abs() <= 4.5 * se_cov).all().item<bool>());
}

TEST_CASE("GMM weights: chi2 draws are far more uneven than uniform ones", "[gmm]") {
  // With K = 25 components, w ∝ chi-square(1) has a squared coefficient of variation near Var(z^2)/E(z^2)^2 = 2,
  // w ∝ U[0, 1] near (1/12)/(1/4) = 1/3 (normalisation by the sum lowers both a little). Averaged over 40 seeds.
  auto cv2 = [](const std::string& kind) {
    double total = 0;
    for (uint64_t seed = 0; seed < 40; ++seed) {
      GmmParams p;
      p.dim = 2;
      p.weights = kind;
      p.ode_steps = 1;
      GaussianMixture g(p, seed);
      const auto& w = g.weights();
      CHECK(w.sum().item<double>() == Approx(1.0));
      total += (w.var(/*unbiased=*/false) / w.mean().pow(2)).item<double>() / 40;
    }
    return total;
  };
  const double chi2 = cv2("chi2"), uniform_draws = cv2("random");
  INFO("mean squared CV: chi2 " << chi2 << ", random " << uniform_draws);
  CHECK(chi2 > 1.2);
  CHECK(chi2 < 2.4);
  CHECK(uniform_draws > 0.2);
  CHECK(uniform_draws < 0.45);
}

TEST_CASE("GMM sigma_data is the prior's own spread", "[gmm]") {
  // The MCGdiff grid (25 components, spacing 8, unit variance): per coordinate the means spread over
  // {-16, -8, 0, 8, 16}, variance near 1 + 128; EDM's 0.5 would be 20 times too small.
  GmmParams p;
  p.ode_steps = 1;
  GaussianMixture g(p, 3);
  auto gen = make_generator(5);
  auto x = g.sample(100000, gen);
  const double spread = std::sqrt(x.var(0).mean().item<double>());
  INFO("sigma_data " << g.sigma_data() << ", spread of draws " << spread);
  CHECK(g.sigma_data() == Approx(std::sqrt(g.covariance().diagonal().mean().item<double>())).epsilon(1e-12));
  CHECK(g.sigma_data() == Approx(spread).epsilon(0.01));
  CHECK(g.sigma_data() > 8);
}
