// Mixture of PPCA: closed-form density/score/denoiser against dense and Monte-Carlo definitions, the
// exact posterior against a dense Kalman-form computation, the cache, and the Fashion-MNIST fit.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "core/errors.h"
#include "core/rng.h"
#include "data/fashion_mnist.h"
#include "priors/ppca.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace psbench;
using namespace psbench::testing;

namespace {

// K random components in dimension d, rank r: random means, orthonormal bases (QR), eigenvalues in
// [0.5, 2.5] above the residual variance 0.1 + U[0, 0.1].
PpcaParameters random_ppca(int64_t k, int64_t d, int64_t r, uint64_t seed, double spread = 2.0) {
  auto gen = make_generator(seed);
  PpcaParameters p;
  auto w = at::rand({k}, gen, kF64) + 0.2;
  p.weights = w / w.sum();
  p.means = spread * at::randn({k, d}, gen, kF64);
  std::vector<at::Tensor> us;
  for (int64_t c = 0; c < k; ++c) us.push_back(std::get<0>(at::linalg_qr(at::randn({d, r}, gen, kF64))));
  p.bases = at::stack(us);
  p.residual = 0.1 + 0.1 * at::rand({k}, gen, kF64);
  p.eigenvalues = 0.5 + 2.0 * at::rand({k, r}, gen, kF64);
  return p;
}

// Dense log N(x; mu, S) for x [B, d].
at::Tensor dense_log_normal(const at::Tensor& x, const at::Tensor& mu, const at::Tensor& s) {
  auto l = at::linalg_cholesky(s);
  auto white = at::linalg_solve_triangular(l, (x - mu).t(), false);
  const double d = static_cast<double>(x.size(1));
  return -0.5 * white.pow(2).sum(0) - at::diagonal(l).log().sum() - 0.5 * d * std::log(2 * M_PI);
}

// A dense linear operator; `expose_matrix` = false forces the prior to recover A from forward().
class DenseOp : public Operator {
 public:
  DenseOp(at::Tensor a, Shape in, bool expose_matrix) : a_(std::move(a)), in_(std::move(in)), expose_(expose_matrix) {}
  std::string name() const override { return "dense_test"; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return {a_.size(0)}; }
  at::Tensor forward(const at::Tensor& x) const override { return x.flatten(1).matmul(a_.t().to(x.scalar_type())); }
  bool is_linear() const override { return true; }
  at::Tensor adjoint(const at::Tensor& y) const override {
    Shape s = in_;
    s.insert(s.begin(), y.size(0));
    return y.matmul(a_.to(y.scalar_type())).reshape(s);
  }
  bool has_matrix() const override { return expose_; }
  at::Tensor matrix() const override { return a_; }

 private:
  at::Tensor a_;
  Shape in_;
  bool expose_;
};

}  // namespace

TEST_CASE("ppca: Woodbury log-density equals the dense Gaussian mixture density and the score is its gradient", "[ppca]") {
  auto p = random_ppca(3, 7, 2, 11);
  PpcaMixture prior(p, {7}, 8);
  auto gen = make_generator(5);
  auto x = 2.0 * at::randn({5, 7}, gen, kF64);
  for (double sigma : {0.0, 0.05, 0.7, 4.0}) {
    std::vector<at::Tensor> comps;
    for (int64_t k = 0; k < 3; ++k)
      comps.push_back(p.weights[k].log() +
                      dense_log_normal(x, p.means[k], p.covariance(k) + sigma * sigma * at::eye(7, kF64)));
    auto dense = at::logsumexp(at::stack(comps, 1), 1);
    CHECK(at::allclose(prior.log_density(x, sigma), dense, 1e-10, 1e-10));
    if (sigma > 0) {
      auto xg = x.clone().requires_grad_(true);
      auto grad = torch::autograd::grad({prior.log_density(xg, sigma).sum()}, {xg})[0];
      CHECK(at::allclose(prior.score(x, sigma), grad, 1e-8, 1e-9));
    }
  }
}

TEST_CASE("ppca: exact draws have the mixture's mean and covariance", "[ppca]") {
  auto p = random_ppca(3, 5, 2, 3);
  PpcaMixture prior(p, {5}, 8);
  auto gen = make_generator(9);
  const int64_t n = 200000;
  at::Tensor comps;
  auto x = prior.sample(n, gen, comps);
  auto se_mean = (x.var(0) / n).sqrt();
  CHECK(((x.mean(0) - prior.mean()).abs() < 5 * se_mean).all().item<bool>());
  // Second moments: SE of each covariance entry from the spread of the centred products.
  auto xc = x - x.mean(0);
  auto prods = xc.unsqueeze(2) * xc.unsqueeze(1);
  auto se_cov = (prods.var(0) / n).sqrt();
  CHECK(((prods.mean(0) - prior.covariance()).abs() < 5 * se_cov + 1e-12).all().item<bool>());
  // sigma_data is the draws' spread sqrt(tr Cov / d), not EDM's 0.5.
  const double spread = std::sqrt(x.var(0).mean().item<double>());
  CHECK(prior.sigma_data() == Approx(std::sqrt(prior.covariance().diagonal().mean().item<double>())).epsilon(1e-12));
  CHECK(prior.sigma_data() == Approx(spread).epsilon(0.01));
  // Components are drawn with the mixture weights.
  auto frac = at::bincount(comps, {}, 3).to(at::kDouble) / n;
  CHECK(((frac - p.weights).abs() < 5 * (p.weights * (1 - p.weights) / n).sqrt()).all().item<bool>());
}

TEST_CASE("ppca: the denoiser matches its Monte-Carlo definition E(x0 | x_sigma)", "[ppca][slow]") {
  // Self-normalised importance sampling over exact prior draws x0_i with weights N(x; x0_i, sigma^2 I);
  // standard error per coordinate by the delta method: sqrt(sum w_i^2 (x0_ij - est_j)^2) / sum w_i.
  auto p = random_ppca(3, 4, 2, 21, 1.5);
  PpcaMixture prior(p, {4}, 8);
  auto gen = make_generator(17);
  const int64_t n = 400000;
  auto x0 = prior.sample(n, gen);
  for (double sigma : {0.4, 1.0, 3.0}) {
    auto truth = prior.sample(1, gen);
    auto x = truth + sigma * at::randn({1, 4}, gen, kF64);
    auto logw = -(x0 - x).pow(2).sum(1) / (2 * sigma * sigma);
    auto w = (logw - logw.max()).exp();
    auto est = (w.unsqueeze(1) * x0).sum(0) / w.sum();
    auto se = (w.pow(2).unsqueeze(1) * (x0 - est).pow(2)).sum(0).sqrt() / w.sum();
    auto d = prior.denoise(x, at::full({1}, sigma, kF64))[0];
    INFO("sigma " << sigma << " D " << d << " MC " << est << " se " << se);
    CHECK(((d - est).abs() < 4.5 * se).all().item<bool>());
    // The check has power: the denoiser at a 25% wrong noise level is rejected.
    auto wrong = prior.denoise(x, at::full({1}, 1.25 * sigma, kF64))[0];
    CHECK(((wrong - est).abs() > 4.5 * se).any().item<bool>());
  }
}

TEST_CASE("ppca: exact posterior equals a dense Kalman-form computation", "[ppca]") {
  // Vector data and 8x8 images; with and without an exposed matrix.
  const bool image = GENERATE(false, true);
  const bool expose = GENERATE(true, false);
  const Shape shape = image ? Shape{1, 8, 8} : Shape{6};
  const int64_t d = numel(shape), r = image ? 5 : 2, m = image ? 20 : 3;
  auto p = random_ppca(4, d, r, image ? 31 : 32);
  PpcaMixture prior(p, shape, 8);
  auto gen = make_generator(41);
  auto a = at::randn({m, d}, gen, kF64) / std::sqrt(static_cast<double>(d));
  if (image) {  // random inpainting: m observed pixels
    auto idx = at::randperm(d, gen, at::TensorOptions().dtype(at::kLong)).slice(0, 0, m);
    a = at::eye(d, kF64).index_select(0, idx);
  }
  DenseOp op(a, shape, expose);
  const double sigma_y = 0.3;
  auto x_true = prior.sample(1, gen);
  auto y = op.forward(x_true) + sigma_y * at::randn({1, m}, gen, kF64);
  auto post = prior.exact_posterior(op, sigma_y, y);
  REQUIRE(post);

  std::vector<at::Tensor> means, vars, logw;
  for (int64_t k = 0; k < p.components(); ++k) {
    auto c = p.covariance(k);
    auto g = a.matmul(c).matmul(a.t()) + sigma_y * sigma_y * at::eye(m, kF64);
    auto gain = c.matmul(a.t()).matmul(at::linalg_inv(g));
    means.push_back(p.means[k] + gain.matmul(y[0] - a.matmul(p.means[k])));
    vars.push_back(at::diagonal(c - gain.matmul(a).matmul(c)));
    logw.push_back(p.weights[k].log() + dense_log_normal(y, a.matmul(p.means[k]), g)[0]);
  }
  auto pi = at::softmax(at::stack(logw), 0);
  auto mk = at::stack(means), vk = at::stack(vars);
  auto mean = pi.matmul(mk);
  auto var = pi.matmul(vk + mk.pow(2)) - mean.pow(2);
  CHECK(at::allclose(post->component_weights(), pi, 1e-8, 1e-10));
  CHECK(at::allclose(post->mean().flatten(), mean, 1e-8, 1e-9));
  CHECK(at::allclose(post->marginal_variance().flatten(), var, 1e-8, 1e-9));
  CHECK(post->mean().sizes() == at::IntArrayRef(shape));

  // Draws: shape, and mean within Monte-Carlo error.
  const int64_t n = 50000;
  auto s = post->sample(n, gen);
  Shape want = shape;
  want.insert(want.begin(), n);
  CHECK(s.sizes() == at::IntArrayRef(want));
  auto sf = s.flatten(1);
  auto se = (sf.var(0) / n).sqrt();
  CHECK(((sf.mean(0) - mean).abs() < 5 * se).all().item<bool>());
  // SE of a sample variance: sqrt((m4 - v^2) / n), m4 the fourth central moment.
  auto c = sf - sf.mean(0);
  auto se_var = ((c.pow(4).mean(0) - c.pow(2).mean(0).pow(2)) / n).sqrt();
  CHECK(((sf.var(0) - var).abs() < 5 * se_var).all().item<bool>());
}

TEST_CASE("ppca: cache files round-trip and reject damage", "[ppca]") {
  auto p = random_ppca(2, 6, 2, 7);
  const std::string dir = temp_dir("ppca-cache");
  const std::string path = dir + "/x.bin";
  save_ppca(path, "key-a", p);
  PpcaParameters q;
  REQUIRE(load_ppca(path, "key-a", q));
  CHECK(q.means.equal(p.means));
  CHECK(q.bases.equal(p.bases));
  CHECK(q.eigenvalues.equal(p.eigenvalues));
  CHECK(q.residual.equal(p.residual));
  CHECK(q.weights.equal(p.weights));
  PpcaParameters untouched;
  CHECK_FALSE(load_ppca(path, "key-b", untouched));
  CHECK_FALSE(untouched.means.defined());
  CHECK_FALSE(load_ppca(dir + "/missing.bin", "key-a", untouched));
  fs::resize_file(path, fs::file_size(path) - 9);
  CHECK_THROWS_AS(load_ppca(path, "key-a", untouched), ConfigError);
}

TEST_CASE("ppca: EM recovers well-separated components", "[ppca]") {
  auto p = random_ppca(3, 10, 2, 51, 6.0);
  PpcaMixture prior(p, {10}, 8);
  auto gen = make_generator(52);
  at::Tensor comps;
  auto x = prior.sample(6000, gen, comps);
  auto fit = fit_ppca_em(x, 3, 2, 0, 10, 3);
  // Match fitted to true components by nearest mean; weights and means agree within sampling error.
  for (int64_t k = 0; k < 3; ++k) {
    auto dist = (fit.means - p.means[k]).pow(2).sum(1);
    const int64_t j = dist.argmin().item<int64_t>();
    CHECK(dist[j].item<double>() < 0.1);
    CHECK(fit.weights[j].item<double>() == Approx(p.weights[k].item<double>()).margin(0.03));
    CHECK(fit.residual[j].item<double>() == Approx(p.residual[k].item<double>()).epsilon(0.15));
  }
}

TEST_CASE("ppca_mixture on Fashion-MNIST: per-class fit, cache, samples, posterior", "[ppca][slow]") {
  if (!fs::exists(fs::path(kFashionMnistDefaultRoot) / "train-images-idx3-ubyte.gz"))
    FAIL("Debian package dataset-fashion-mnist is not installed (run make deps)");
  const std::string dir = temp_dir("ppca-fm");
  PpcaFitOptions fit;
  fit.rank = 8;
  std::string path;
  double secs = -1;
  auto t0 = std::chrono::steady_clock::now();
  auto p = fit_or_load_fashion_mnist_ppca(fit, kFashionMnistDefaultRoot, dir, &path, &secs);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("per-class rank-8 fit: " << secs << " s (wall " << wall << " s), cached at " << path);
  CHECK(secs > 0);
  CHECK(fs::exists(path));
  REQUIRE(p.components() == 10);
  // Component means are the class means of the training images.
  auto split = load_fashion_mnist(kFashionMnistDefaultRoot, "train");
  auto x = fashion_mnist_to_float(split->images, at::kDouble).flatten(1);
  for (int64_t c : {0, 7}) {
    auto cls = x.index_select(0, (split->labels == c).nonzero().squeeze(1));
    CHECK(at::allclose(p.means[c], cls.mean(0), 1e-9, 1e-9));
  }
  CHECK(at::allclose(p.weights, at::full({10}, 0.1, kF64)));
  CHECK((p.eigenvalues.select(1, 7) >= p.residual).all().item<bool>());
  // Second request: loaded from the cache, identical.
  double secs2 = -1;
  auto t1 = std::chrono::steady_clock::now();
  auto q = fit_or_load_fashion_mnist_ppca(fit, kFashionMnistDefaultRoot, dir, nullptr, &secs2);
  CHECK(secs2 == 0);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() < 1.0);
  CHECK(q.bases.equal(p.bases));

  PpcaMixture prior(p, {1, 28, 28}, 8);
  // Test images are far more likely under the prior than the same images with their pixels shuffled.
  auto test = fashion_mnist_to_float(load_fashion_mnist(kFashionMnistDefaultRoot, "test")->images.slice(0, 0, 20),
                                     at::kDouble).unsqueeze(1);
  auto gen = make_generator(3);
  auto shuffled = test.flatten(1).index_select(1, at::randperm(784, gen, at::TensorOptions().dtype(at::kLong)))
                      .reshape({20, 1, 28, 28});
  CHECK((prior.log_density(test, 0) > prior.log_density(shuffled, 0) + 100).all().item<bool>());
  // The class of a test image is mostly its most responsible component (a sanity check of the fit).
  auto labels = load_fashion_mnist(kFashionMnistDefaultRoot, "test")->labels.slice(0, 0, 20);
  CHECK(prior.responsibilities(test, 0).argmax(1).eq(labels).sum().item<int64_t>() >= 14);

  // Generator: the gap in mean log p between Phi(z) and exact draws shrinks as the ODE is refined.
  at::NoGradGuard no_grad;
  auto z = at::randn({16, 1, 28, 28}, gen, kF64);
  auto exact_lp = prior.log_density(prior.sample(16, gen), 0);
  std::vector<double> gaps;
  for (int64_t steps : {8, 32, 128}) {
    PpcaMixture refined(p, {1, 28, 28}, steps);
    auto phi = refined.generator()->generate(z);
    REQUIRE(phi.sizes() == at::IntArrayRef({16, 1, 28, 28}));
    auto lp = refined.log_density(phi, 0);
    const double se = std::sqrt((lp.var() + exact_lp.var()).item<double>() / 16.0);
    gaps.push_back((exact_lp.mean() - lp.mean()).item<double>());
    WARN("ode_steps " << steps << ": mean log p generator " << lp.mean().item<double>() << ", exact draws "
                      << exact_lp.mean().item<double>() << " (se of difference " << se << ")");
    if (steps == 128) CHECK(std::abs(gaps.back()) < 4 * se);
  }
  CHECK(gaps[1] < gaps[0]);

  // Exact posterior of 20% random inpainting at 784 dimensions: the mean explains the observations.
  auto idx = at::randperm(784, gen, at::TensorOptions().dtype(at::kLong)).slice(0, 0, 157);
  DenseOp op(at::eye(784, kF64).index_select(0, idx), {1, 28, 28}, true);
  auto y = op.forward(test.slice(0, 0, 1)) + 0.05 * at::randn({1, 157}, gen, kF64);
  auto post = prior.exact_posterior(op, 0.05, y);
  REQUIRE(post);
  const double err_post = (post->mean() - test[0]).pow(2).mean().item<double>();
  const double err_prior = (prior.mean().reshape({1, 28, 28}) - test[0]).pow(2).mean().item<double>();
  WARN("inpainting MSE: posterior mean " << err_post << ", prior mean " << err_prior);
  CHECK(err_post < 0.5 * err_prior);
}
