// The image metrics inside the runner: per-sample aggregation (mean, @posterior_mean, @best_of_k),
// per-set Fréchet distance / KID with warnings, network provenance, `psbench evaluate` re-scoring stored
// samples without re-sampling, and loud failures.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "core/sha256.h"
#include "metrics/features.h"
#include "metrics/fmnist_cnn.h"
#include "runner/experiment.h"
#include "runner/runner.h"
#include "store/result_store.h"
#include "test_util.h"

using namespace psbench;
using psbench::testing::read_text;
using psbench::testing::run_cli;
using psbench::testing::temp_dir;

namespace {

// PPCA prior (exact posterior, fitted in seconds at rank 4) on Fashion-MNIST, SR x4, exact sampler.
std::string experiment(const std::string& dir, const std::string& metrics) {
  return "name: metrics_cli\nseed: 1\nmeasurements: 3\nsamples_per_measurement: 8\nstore_samples: true\n"
         "metrics: " + metrics + "\n"
         "tasks: [{name: sr_avgpool, factor: 4, sigma_y: 0.1}]\n"
         "datasets: [{name: fashion_mnist, split: test}]\n"
         "priors: [{name: ppca_mixture, rank: 4, ode_steps: 2, cache_dir: " + dir + "/cache}]\n"
         "samplers: [exact]\n";
}

const std::string kAllMetrics =
    "[{name: psnr, best_of_k: true}, ssim, perceptual_fmnist_cnn, diversity_perceptual_fmnist_cnn, pixel_std, "
    "vendi_fmnist_cnn, diversity_score_fmnist_cnn, data_consistency, classifier_accuracy_fmnist_cnn, fd_fmnist_cnn, "
    "{name: kid_fmnist_cnn, subsets: 10}, mse_to_truth]";

CellRecord only_cell(const std::string& path) {
  auto cells = Hdf5Store(path, "r").read_all();
  REQUIRE(cells.size() == 1);
  return cells[0];
}

}  // namespace

TEST_CASE("runner stores image metrics with honest aggregation, provenance and warnings, and evaluate re-scores them", "[metrics][cli]") {
  const auto dir = temp_dir("metrics_cli");
  const std::string yaml = dir + "/e.yaml", out = dir + "/r.h5", log = dir + "/log.txt";
  std::ofstream(yaml) << experiment(dir, kAllMetrics);
  REQUIRE(run_cli("run " + yaml + " --out " + out, log) == 0);
  auto c = only_cell(out);
  INFO(read_text(log));
  REQUIRE(c.attr("status") == "ok");
  for (const char* name : {"psnr", "ssim", "perceptual_fmnist_cnn", "data_consistency", "classifier_accuracy_fmnist_cnn",
                           "mse_to_truth"}) {
    CAPTURE(name);
    REQUIRE(c.arrays.count(std::string("metrics/") + name));
    CHECK(c.arrays.at(std::string("metrics/") + name).numel() == 3);
    CHECK(c.arrays.at(std::string("metrics/") + name + "@posterior_mean").numel() == 3);
  }
  // Best of K only under its own label, and only when asked for.
  REQUIRE(c.arrays.count("metrics/psnr@best_of_k"));
  CHECK((c.arrays.at("metrics/psnr@best_of_k") >= c.arrays.at("metrics/psnr")).all().item<bool>());
  CHECK_FALSE(c.arrays.count("metrics/ssim@best_of_k"));
  // The posterior mean is a better point estimate than a single posterior sample (MSE).
  CHECK((c.arrays.at("metrics/mse_to_truth@posterior_mean") < c.arrays.at("metrics/mse_to_truth")).all().item<bool>());
  // Exact posterior samples fit the data about as well as the truth does.
  const double dc = c.arrays.at("metrics/data_consistency").mean().item<double>();
  CHECK(dc > 0.5);
  CHECK(dc < 1.5);
  CHECK(c.attr("metric:data_consistency") == "target:1");
  // Per-set metrics: one value per cell, KID with its spread; 24 samples < 2 x 128 dimensions: warned.
  CHECK(c.arrays.at("metrics/fd_fmnist_cnn").numel() == 1);
  CHECK(c.arrays.at("metrics/fd_fmnist_cnn@posterior_mean").numel() == 1);
  CHECK(c.arrays.count("metric_spread/kid_fmnist_cnn"));
  CHECK(c.attr("warning:fd_fmnist_cnn").find("fewer than twice") != std::string::npos);
  CHECK(c.attr("metric_level:fd_fmnist_cnn") == "per_set");
  // Network and weights recorded per metric.
  const std::string sha = sha256_file(default_fmnist_cnn_path());
  for (const char* name : {"fd_fmnist_cnn", "kid_fmnist_cnn", "perceptual_fmnist_cnn", "vendi_fmnist_cnn",
                           "diversity_score_fmnist_cnn", "classifier_accuracy_fmnist_cnn",
                           "diversity_perceptual_fmnist_cnn"}) {
    CAPTURE(name);
    CHECK(c.attr(std::string("metric_network:") + name) == "fmnist_cnn");
    CHECK(c.attr(std::string("metric_weights_sha256:") + name) == sha);
  }
  CHECK(c.arrays.at("metric_arrays/pixel_std/map/m0002").sizes() == at::IntArrayRef({1, 28, 28}));
  // The report shows the warning and the network.
  REQUIRE(run_cli("report " + out, log) == 0);
  const auto report = read_text(log);
  CHECK(report.find("fd_fmnist_cnn") != std::string::npos);
  CHECK(report.find("Warnings:") != std::string::npos);
  CHECK(report.find("Metric network: fmnist_cnn") != std::string::npos);

  // evaluate: same metrics from the stored (float32) samples, without re-sampling.
  const std::string again = dir + "/again.h5";
  REQUIRE(run_cli("evaluate " + out + " --out " + again, log) == 0);
  auto r = only_cell(again);
  for (const auto& [k, t] : c.arrays) {
    if (k.rfind("metrics/", 0) != 0) continue;
    CAPTURE(k);
    REQUIRE(r.arrays.count(k));
    CHECK(at::allclose(r.arrays.at(k).to(at::kDouble), t.to(at::kDouble), 1e-3, 1e-5));
  }
  CHECK(at::equal(r.arrays.at("samples/m0001"), c.arrays.at("samples/m0001")));
  // A different metric set replaces the old one.
  REQUIRE(run_cli("evaluate " + again + " --metrics '[ssim, {name: fd_fmnist_cnn, reference: fashion_mnist_test}]'", log) == 0);
  auto s = only_cell(again);
  CHECK(s.arrays.count("metrics/ssim"));
  CHECK(s.arrays.count("metrics/fd_fmnist_cnn"));
  CHECK_FALSE(s.arrays.count("metrics/psnr"));
  CHECK(s.attr("metric_reference:fd_fmnist_cnn") == "fashion_mnist_test");
}

TEST_CASE("image metrics fail loudly: missing weights, unusable data, no stored samples", "[metrics][cli]") {
  const auto dir = temp_dir("metrics_fail");
  const std::string yaml = dir + "/e.yaml", log = dir + "/log.txt";
  std::ofstream(yaml) << experiment(dir, "[{name: fd_fmnist_cnn, network_path: " + dir + "/missing.pt}]");
  CHECK(run_cli("run " + yaml + " --out " + dir + "/a.h5", log) == 2);
  CHECK(read_text(log).find("missing.pt: no such file") != std::string::npos);
  // fid without an Inception file: an explicit request is an error naming what is missing.
  std::ofstream(yaml) << experiment(dir, "[fid]");
  CHECK(run_cli("run " + yaml + " --out " + dir + "/b.h5", log) == 2);
  CHECK(read_text(log).find("network_path is required") != std::string::npos);
  // Image metrics on vector data.
  std::ofstream(yaml) << "name: v\nseed: 0\nmetrics: [psnr]\ntasks: [{name: gmm_lowrank, d_y: 1}]\n"
                         "priors: [{name: gmm, dim: 8}]\nsamplers: [exact]\n";
  CHECK(run_cli("run " + yaml + " --out " + dir + "/c.h5", log) == 2);
  CHECK(read_text(log).find("needs images") != std::string::npos);
  // evaluate needs stored samples.
  std::ofstream(yaml) << "name: v\nseed: 0\nmetrics: [mse_to_truth]\ntasks: [{name: gmm_lowrank, d_y: 1}]\n"
                         "priors: [{name: gmm, dim: 8}]\nsamplers: [exact]\n";
  REQUIRE(run_cli("run " + yaml + " --out " + dir + "/d.h5", log) == 0);
  CHECK(run_cli("evaluate " + dir + "/d.h5", log) == 0);
  CHECK(read_text(log).find("no stored samples") != std::string::npos);
}

TEST_CASE("diversity metrics in a cell with one sample per measurement are recorded as skipped, not an error",
          "[metrics][runner]") {
  // K = 1 is one point of a sweep over K (experiments/timing_vs_dps.yaml): the cell runs, pixel_std is
  // left out with its reason, the other metrics are stored.
  auto ex = parse_experiment_text(R"(
name: k1
seed: 0
measurements: 2
samples_per_measurement: [1, 3]
metrics: [pixel_std, posterior_mean_rmse]
tasks: [{name: gmm_lowrank, d_y: 2}]
priors: [{name: gmm, dim: 8, ode_steps: 4}]
samplers: [exact]
)", "k1.yaml");
  PriorCache priors;
  REQUIRE_NOTHROW(validate_experiment(ex, priors));
  REQUIRE(ex.cells.size() == 2);
  auto one = run_cell(ex.cells[0], priors, RunOptions{});
  auto three = run_cell(ex.cells[1], priors, RunOptions{});
  CHECK(one.attr("status") == "ok");
  CHECK(one.arrays.count("metrics/pixel_std") == 0);
  CHECK(one.arrays.count("metrics/posterior_mean_rmse") == 1);
  CHECK(one.attr("metrics_skipped").find("pixel_std: needs at least 2 samples per measurement") != std::string::npos);
  CHECK(three.arrays.count("metrics/pixel_std") == 1);
}
