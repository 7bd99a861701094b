// Image metrics: known values, independent references (skimage, scipy; tests/metrics/make_fixtures.py),
// sanity on real Fashion-MNIST test images with the shipped fmnist_cnn weights, loud failures.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "data/fashion_mnist.h"
#include "metrics/diversity.h"
#include "metrics/features.h"
#include "metrics/fmnist_cnn.h"
#include "metrics/image_quality.h"
#include "metrics/metric.h"
#include "metrics/perceptual.h"
#include "operators/operator.h"
#include "operators/operator_test_util.h"
#include "test_util.h"

using namespace psbench;
using psbench::test::read_fixture;

namespace {

at::Tensor test_images(int64_t offset, int64_t n) {
  auto split = load_fashion_mnist(kFashionMnistDefaultRoot, "test");
  return fashion_mnist_to_float(split->images.narrow(0, offset, n)).unsqueeze(1);
}

// Separable Gaussian blur with reflect padding, std s pixels (radius 3 s).
at::Tensor blur(const at::Tensor& x, double s) {
  const int64_t r = static_cast<int64_t>(std::ceil(3 * s));
  auto t = at::arange(-r, r + 1, at::kFloat);
  auto k = (-(t * t) / (2 * s * s)).exp();
  k = k / k.sum();
  auto p = at::reflection_pad2d(x, {r, r, r, r});
  p = at::conv2d(p, k.view({1, 1, 1, -1}));
  return at::conv2d(p, k.view({1, 1, -1, 1}));
}

}  // namespace

TEST_CASE("sha256 of known strings", "[metrics]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex(std::string(1000, 'a')) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST_CASE("PSNR of identical images is +inf without NaN, SSIM is 1", "[metrics]") {
  auto gen = make_generator(3);
  auto x = at::rand({2, 1, 16, 16}, gen, at::kDouble) * 2 - 1;
  auto p = psnr(x, x);
  CHECK(std::isinf(p[0].item<double>()));
  CHECK(p[0].item<double>() > 0);
  CHECK_FALSE(at::isnan(p).any().item<bool>());
  auto s = ssim(x, x);
  CHECK(s[0].item<double>() == Approx(1.0).margin(1e-12));
  CHECK(s[1].item<double>() == Approx(1.0).margin(1e-12));
  // A known value: a constant offset of 0.2 in [-1, 1] is 0.1 in [0, 1], mse 0.01, 20 dB.
  CHECK(psnr(x, x + 0.2)[0].item<double>() == Approx(20.0).epsilon(1e-12));
}

TEST_CASE("SSIM of a batch larger than its chunk equals SSIM image by image, against one reference or many", "[metrics]") {
  auto gen = make_generator(5);
  auto a = at::rand({150, 1, 16, 16}, gen, at::kDouble) * 2 - 1;
  auto b = at::rand({150, 1, 16, 16}, gen, at::kDouble) * 2 - 1;
  const auto many = ssim(a, b), one = ssim(a, b.slice(0, 7, 8));
  REQUIRE(many.size(0) == 150);
  REQUIRE(one.size(0) == 150);
  for (int64_t i : {0, 63, 64, 65, 127, 128, 149}) {
    CAPTURE(i);
    CHECK(many[i].item<double>() == Approx(ssim(a.slice(0, i, i + 1), b.slice(0, i, i + 1))[0].item<double>()).epsilon(1e-12));
    CHECK(one[i].item<double>() == Approx(ssim(a.slice(0, i, i + 1), b.slice(0, 7, 8))[0].item<double>()).epsilon(1e-12));
  }
}

TEST_CASE("PSNR and SSIM match skimage.metrics", "[metrics][reference]") {
  auto f = read_fixture("metrics_quality.txt");
  const int n = static_cast<int>(f["count"][0].item<double>());
  REQUIRE(n >= 4);
  for (int i = 0; i < n; ++i) {
    const auto s = std::to_string(i);
    auto a = f["a_" + s].unsqueeze(0), b = f["b_" + s].unsqueeze(0);
    CAPTURE(i, a.sizes());
    CHECK(psnr(a, b)[0].item<double>() == Approx(f["psnr_" + s][0].item<double>()).epsilon(1e-10));
    CHECK(ssim(a, b)[0].item<double>() == Approx(f["ssim_" + s][0].item<double>()).epsilon(1e-9));
  }
}

TEST_CASE("Frechet distance matches scipy.linalg.sqrtm and is 0 for a set with itself", "[metrics][reference]") {
  auto f = read_fixture("metrics_frechet.txt");
  const int n = static_cast<int>(f["count"][0].item<double>());
  for (int i = 0; i < n; ++i) {
    const auto s = std::to_string(i);
    CAPTURE(i);
    CHECK(frechet_distance(f["a_" + s], f["b_" + s]) == Approx(f["fd_" + s][0].item<double>()).epsilon(1e-8));
    CHECK(frechet_distance(f["a_" + s], f["a_" + s]) == Approx(0.0).margin(1e-9));
  }
}

TEST_CASE("Frechet distance of two Gaussians matches the closed form", "[metrics]") {
  // Commuting covariances: FD = ||mu_a - mu_b||^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
  auto va = at::tensor({1.0, 4.0, 9.0, 0.25}, at::kDouble), vb = at::tensor({4.0, 1.0, 9.0, 1.0}, at::kDouble);
  auto ma = at::tensor({0.0, 1.0, 0.0, 2.0}, at::kDouble), mb = at::zeros({4}, at::kDouble);
  const double closed = 5.0 + (va.sqrt() - vb.sqrt()).pow(2).sum().item<double>();
  CHECK(frechet_distance_moments(ma, at::diag(va), mb, at::diag(vb)) == Approx(closed).epsilon(1e-12));
  // Rotating both covariances by the same orthogonal matrix changes nothing.
  auto gen = make_generator(11);
  auto q = std::get<0>(at::linalg_qr(at::randn({4, 4}, gen, at::kDouble)));
  CHECK(frechet_distance_moments(q.matmul(ma), q.matmul(at::diag(va)).matmul(q.t()), q.matmul(mb),
                                 q.matmul(at::diag(vb)).matmul(q.t())) == Approx(closed).epsilon(1e-9));
  // From samples: the estimate over R replicates agrees with the closed form within 4 standard errors
  // plus the O(d / n) upward bias of the plug-in estimator (bounded by 2 Tr(S_a + S_b) d / n here).
  const int64_t n = 4000, reps = 8;
  std::vector<double> est;
  for (int r = 0; r < reps; ++r) {
    auto xa = at::randn({n, 4}, gen, at::kDouble) * va.sqrt() + ma;
    auto xb = at::randn({n, 4}, gen, at::kDouble) * vb.sqrt() + mb;
    est.push_back(frechet_distance(xa, xb));
  }
  auto e = at::tensor(est, at::kDouble);
  const double se = e.std().item<double>() / std::sqrt(static_cast<double>(reps));
  const double bias_bound = 2 * (va.sum() + vb.sum()).item<double>() * 4 / n;
  CAPTURE(e.mean().item<double>(), closed, se);
  CHECK(std::abs(e.mean().item<double>() - closed) < 4 * se + bias_bound);
}

TEST_CASE("KID of two Gaussians matches the closed form", "[metrics]") {
  // x ~ N(0, s_a^2 I), y ~ N(0, s_b^2 I) in d dimensions, k(x, y) = (x.y/d + 1)^3: the odd moments vanish
  // and E (x.x')^2 = d s^2 s'^2, so MMD^2 = 3 (s_a^2 - s_b^2)^2 / d.
  const int64_t d = 4;
  const double sa = 1.0, sb = 1.5;
  const double closed = 3 * std::pow(sa * sa - sb * sb, 2) / d;
  auto gen = make_generator(5);
  // Independent replicates: the mean of the unbiased estimator is the closed form.
  std::vector<double> est;
  for (int r = 0; r < 10; ++r) {
    auto xa = at::randn({1000, d}, gen, at::kDouble) * sa;
    auto xb = at::randn({1000, d}, gen, at::kDouble) * sb;
    est.push_back(kid(xa, xb, 20, 500, 100 + r).mean);
  }
  auto e = at::tensor(est, at::kDouble);
  const double se = e.std().item<double>() / std::sqrt(10.0);
  CAPTURE(e.mean().item<double>(), closed, se);
  CHECK(std::abs(e.mean().item<double>() - closed) < 4 * se);
  CHECK(se < 0.2 * closed);  // the test can tell a wrong kernel apart
  // Same distribution: KID ~ 0; KID of a set with itself is exactly unbiased around 0 too.
  auto x = at::randn({600, d}, gen, at::kDouble);
  auto k = kid(x, at::randn({600, d}, gen, at::kDouble), 20, 300, 1);
  CHECK(std::abs(k.mean) < 4 * k.std / std::sqrt(20.0) + 0.05);
  CHECK(k.subset_size == 300);
}

TEST_CASE("diversity metrics of identical samples", "[metrics]") {
  auto net = load_feature_network();
  auto x = test_images(0, 1).expand({6, 1, 28, 28}).contiguous();
  CHECK(pixel_std_map(x).abs().max().item<double>() == 0.0);
  CHECK(mean_pairwise_perceptual_distance(*net, x) == Approx(0.0).margin(1e-12));
  auto f = net->features(x);
  CHECK(diversity_score(f) == 0.0);
  CHECK(vendi_score(f) == Approx(1.0).epsilon(1e-9));  // Vendi's minimum: one effective sample
  // Different images are more diverse than noisy copies of one image on the spread-type counts.
  auto gen = make_generator(4);
  auto copies = (test_images(0, 1) + 0.05 * at::randn({8, 1, 28, 28}, gen, at::kFloat)).clamp(-1, 1);
  auto y = test_images(0, 8);
  CHECK(pixel_std_map(y).mean().item<double>() > pixel_std_map(copies).mean().item<double>());
  CHECK(mean_pairwise_perceptual_distance(*net, y) > mean_pairwise_perceptual_distance(*net, copies));
  CHECK(vendi_score(net->features(y)) > vendi_score(net->features(copies)));
  // The Diversity Score is scale-free and measures cluster structure: two well-separated groups of
  // samples (two images, 20 noisy copies each) score higher than 40 noisy copies of one image.
  auto noise = 0.05 * at::randn({20, 1, 28, 28}, gen, at::kFloat);
  auto two = at::cat({test_images(0, 1) + noise, test_images(1, 1) + noise}).clamp(-1, 1);
  auto one = (test_images(0, 1) + 0.05 * at::randn({40, 1, 28, 28}, gen, at::kFloat)).clamp(-1, 1);
  const double ds_two = diversity_score(net->features(two)), ds_one = diversity_score(net->features(one));
  CAPTURE(ds_two, ds_one);
  CHECK(ds_two > 2 * ds_one);
  // Vendi of K orthogonal feature vectors is K.
  CHECK(vendi_score(at::eye(5, at::kDouble)) == Approx(5.0).epsilon(1e-9));
}

TEST_CASE("fmnist_cnn: shipped weights load, record their sha256 and classify the test split", "[metrics]") {
  auto net = load_feature_network();
  REQUIRE(net->name() == "fmnist_cnn");
  CHECK(net->sha256() == sha256_file(default_fmnist_cnn_path()));
  auto split = load_fashion_mnist(kFashionMnistDefaultRoot, "test");
  auto logits = net->logits(fashion_mnist_to_float(split->images).unsqueeze(1));
  const double acc = logits.argmax(1).eq(split->labels).to(at::kDouble).mean().item<double>();
  CHECK(acc >= 0.90);
  CHECK(fashion_mnist_test_features(*net).sizes() == at::IntArrayRef({10000, 128}));
}

TEST_CASE("feature networks and reference sets are registry entries, not hard-wired", "[metrics]") {
  CHECK(FeatureNetworkRegistry::instance().has("fmnist_cnn"));
  CHECK(FeatureNetworkRegistry::instance().has("torchscript"));
  REQUIRE(ReferenceSetRegistry::instance().has("fashion_mnist_test"));
  CHECK(ReferenceSetRegistry::instance().get("fashion_mnist_test", "reference set").data_shape == Shape{1, 28, 28});
  FeatureNetworkSpec spec;
  spec.kind = "no_such_network";
  CHECK_THROWS_WITH(load_feature_network(spec), Catch::Contains("known: fmnist_cnn, torchscript"));
  CHECK_THROWS_AS(reference_features("no_such_set", *load_feature_network()), ConfigError);
  auto net = load_feature_network();
  CHECK(at::equal(reference_features("fashion_mnist_test", *net), fashion_mnist_test_features(*net)));
}

TEST_CASE("a feature network that does not load fails loudly", "[metrics]") {
  FeatureNetworkSpec spec;
  spec.path = "/nonexistent/fmnist_cnn.pt";
  CHECK_THROWS_AS(load_feature_network(spec), ConfigError);
  const auto dir = psbench::testing::temp_dir("metrics_badnet");
  const std::string bad = dir + "/garbage.pt";
  std::ofstream(bad) << "not a model";
  spec.path = bad;
  CHECK_THROWS_AS(load_feature_network(spec), ConfigError);
  spec.kind = "torchscript";
  CHECK_THROWS_AS(load_feature_network(spec), ConfigError);
}

TEST_CASE("FD, KID and perceptual distance rise with noise and blur on Fashion-MNIST test images", "[metrics]") {
  auto net = load_feature_network();
  auto x = test_images(0, 600);
  auto fx = net->features(x);
  auto gen = make_generator(9);
  auto noise = at::randn(x.sizes(), gen, at::kFloat);
  auto check_rising = [&](const std::vector<at::Tensor>& degraded, const char* what) {
    double prev_fd = -1, prev_kid = -1, prev_p = -1;
    for (size_t i = 0; i < degraded.size(); ++i) {
      auto fd = frechet_distance(net->features(degraded[i]), fx);
      auto k = kid(net->features(degraded[i]), fx, 10, 300, 1).mean;
      auto p = perceptual_distance(*net, degraded[i], x).mean().item<double>();
      CAPTURE(what, i, fd, k, p);
      CHECK(fd > prev_fd);
      CHECK(k > prev_kid);
      CHECK(p > prev_p);
      prev_fd = fd; prev_kid = k; prev_p = p;
    }
  };
  std::vector<at::Tensor> noisy, blurred;
  for (double s : {0.05, 0.1, 0.2, 0.4}) noisy.push_back((x + s * noise).clamp(-1, 1));
  for (double s : {0.5, 1.0, 1.5, 2.5}) blurred.push_back(blur(x, s));
  check_rising(noisy, "noise");
  check_rising(blurred, "blur");
  CHECK(frechet_sample_warning(600, 600, 128).empty());
  CHECK_FALSE(frechet_sample_warning(200, 600, 128).empty());
}

TEST_CASE("TorchScript feature and LPIPS networks: outputs equal PyTorch's, fid and lpips_alex use them", "[metrics][reference]") {
  auto f = read_fixture("metrics_torchscript.txt");
  const std::string dir = std::string(PSBENCH_SOURCE_DIR) + "/tests/fixtures/";
  FeatureNetworkSpec spec;
  spec.kind = "torchscript";
  spec.path = dir + "ts_features.pt";
  spec.input_size = 20;
  spec.input_channels = 3;
  auto feats = load_feature_network(spec);
  CHECK(feats->name() == "ts_features");
  CHECK(at::allclose(feats->features(f["a"].to(at::kFloat)), f["features_a"], 1e-5, 1e-6));

  spec.path = dir + "ts_lpips.pt";
  auto lp = load_feature_network(spec);
  auto w = torchscript_channel_weights(*lp);
  REQUIRE(w.size() == 2);
  CHECK(at::allclose(perceptual_distance(*lp, f["a"], f["b"], w), f["lpips_ab"], 1e-5, 1e-7));

  // Through the registry, as an experiment names them.
  auto make = [&](const std::string& name, std::map<std::string, OptionValue> given) {
    const auto& e = MetricRegistry::instance().get(name, "metric");
    return e.make(resolve_options(name, e.options, std::move(given)));
  };
  auto lpips = make("lpips_alex", {{"network_path", dir + "ts_lpips.pt"}, {"input_size", int64_t{20}}});
  MetricInput in;
  in.x_true = f["b"][0];
  auto per = lpips->per_sample(in, f["a"]);
  CHECK(per[0].item<double>() == Approx(f["lpips_ab"][0].item<double>()).epsilon(1e-5));
  CHECK(lpips->provenance().at("weights_sha256") == sha256_file(dir + "ts_lpips.pt"));
  auto fid = make("fid", {{"network_path", dir + "ts_features.pt"}, {"input_size", int64_t{20}}});
  SetInput set;
  set.samples = {f["a"]};
  set.x_true = f["b"];
  const auto v = fid->compute_set(set);
  CHECK(v.value == Approx(frechet_distance(feats->features(f["a"]), feats->features(f["b"]))).epsilon(1e-9));
  CHECK_FALSE(v.warning.empty());  // 5 samples, 8 dimensions
  // Without a file, fid cannot exist: a MetricUnavailable (ConfigError) naming what is missing.
  CHECK_THROWS_AS(make("fid", {}), MetricUnavailable);
  // A TorchScript perceptual network without channel weights is refused for lpips_alex.
  CHECK_THROWS_AS(make("lpips_vgg", {{"network_path", dir + "ts_features.pt"}}), ConfigError);
}

TEST_CASE("data_consistency counts only the observed pixels of inpainting", "[metrics]") {
  // 20% of 28x28 pixels observed, sigma_y = 0.1. On the observed pixels the truth leaves a residual of
  // pure noise (about 1); a sample that ignores y (another test image) is far off there. Over all pixels
  // the 80% unobserved ones (noise alone for every sample) would pull both values towards 1.
  const auto& e = TaskRegistry::instance().get("inpaint_random", "task");
  auto task = e.make(resolve_options("inpaint_random", e.options, {{"observed", 0.2}, {"sigma_y", 0.1}}));
  auto gen = make_generator(8);
  const auto x = test_images(0, 2);
  auto model = task->build({1, 28, 28}, gen);
  MetricInput in;
  in.x_true = x[0];
  in.op = model.op.get();
  in.sigma_y = model.noise.sigma_y;
  in.y = model.noise.sample(model.op->forward(x.narrow(0, 0, 1)), gen)[0];
  const auto& me = MetricRegistry::instance().get("data_consistency", "metric");
  auto dc = me.make(resolve_options("data_consistency", me.options, {}));
  const double truth = dc->per_sample(in, x.narrow(0, 0, 1))[0].item<double>();
  const double other = dc->per_sample(in, x.narrow(0, 1, 1))[0].item<double>();
  // chi_157 / sqrt(157): 1 +- 0.06; 5 sd either side.
  CHECK(truth == Approx(1.0).margin(0.3));
  CHECK(other > 3.0);
  const auto support = model.op->output_support();
  REQUIRE(support.defined());
  CHECK(support.sum().item<double>() == 157);  // round(0.2 * 784)
  // Over the whole image the same wrong sample would look less than half as far off.
  const double whole =
      (model.op->forward(x.narrow(0, 1, 1))[0] - in.y).to(at::kDouble).norm().item<double>() / (0.1 * std::sqrt(784.0));
  CAPTURE(truth, other, whole);
  CHECK(whole < 0.5 * other);
}

TEST_CASE("Sliced Wasserstein in both forms on a shifted point cloud", "[metrics]") {
  // b = a shifted by mu in R^2: along a unit direction theta both projections have the same shape, so
  // W_1 = |mu.theta| and W_2^2 = (mu.theta)^2 exactly. Over uniform directions E|cos| = 2/pi and
  // E cos^2 = 1/2: mean_w1 -> |mu| 2/pi, sw2 -> |mu|/sqrt(2).
  auto gen = make_generator(3);
  auto a = at::randn({500, 2}, gen, at::TensorOptions().dtype(at::kDouble));
  auto mu = at::tensor({3.0, 4.0}, at::TensorOptions().dtype(at::kDouble));
  auto b = a + mu;
  auto g1 = make_generator(8), g2 = make_generator(8);
  const double w1 = sliced_wasserstein_mean_w1(a, b, 4000, g1), sw2 = sliced_wasserstein(a, b, 4000, g2);
  // Monte-Carlo error over 4000 directions: sd(|cos|) = 0.31, sd(cos^2) = 0.35, divided by sqrt(4000).
  CHECK(w1 == Approx(5.0 * 2.0 / M_PI).margin(5.0 * 4 * 0.31 / std::sqrt(4000.0)));
  CHECK(sw2 == Approx(5.0 / std::sqrt(2.0)).margin(5.0 * 4 * 0.35 / std::sqrt(4000.0)));
  // Unequal sizes: the quantile integral handles them (a against its first 250 points shifted).
  auto g3 = make_generator(8);
  CHECK(sliced_wasserstein_mean_w1(a, a.narrow(0, 0, 250) + mu, 4000, g3) == Approx(5.0 * 2.0 / M_PI).epsilon(0.1));
}
