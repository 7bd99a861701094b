// MCMC diagnostics (metrics/mcmc_diagnostics.h) against AR(1) chains with a known autocorrelation time,
// the same checks failing for deliberately broken estimators, and the metrics ess_bulk / ess_tail / rhat /
// iat through the runner (stored per measurement, recorded as not computed for one-draw-per-chain samplers).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <sstream>

#include "core/rng.h"
#include "metrics/aggregate.h"
#include "metrics/mcmc_diagnostics.h"
#include "metrics/metric.h"
#include "runner/experiment.h"
#include "runner/report.h"
#include "runner/runner.h"
#include "store/schema.h"

using namespace psbench;

namespace {

// AR(1) x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t, started from its stationary law N(0, 1): [M, N].
// rho_t = phi^t, so tau = 1 + 2 sum_{t>=1} phi^t = (1 + phi) / (1 - phi) and ESS = M N / tau.
at::Tensor ar1_chains(int64_t chains, int64_t draws, double phi, uint64_t seed) {
  auto gen = make_generator(seed);
  auto e = at::randn({chains, draws}, gen, at::TensorOptions().dtype(at::kDouble));
  auto x = at::empty_like(e);
  auto ea = e.accessor<double, 2>();
  auto xa = x.accessor<double, 2>();
  const double s = std::sqrt(1 - phi * phi);
  for (int64_t m = 0; m < chains; ++m) {
    xa[m][0] = ea[m][0];
    for (int64_t t = 1; t < draws; ++t) xa[m][t] = phi * xa[m][t - 1] + s * ea[m][t];
  }
  return x;
}

constexpr double kPhi = 0.9;
constexpr int64_t kChainsAr1 = 4, kDrawsAr1 = 2000;
const double kTauAr1 = (1 + kPhi) / (1 - kPhi);  // 19

// Monte Carlo tolerance of the AR(1) checks. The estimators are averaged over kReplicates independent sets
// of 4 x 2000 draws. The spread of one set's estimate was measured with the hidden test "calibration of the
// AR(1) checks" below (400 sets): tau 19.33 +- 2.90 (sd), bulk ESS 423 +- 56, tail ESS 897 +- 142, split
// R-hat 1.009 +- 0.0045 (mixed) and 1.110 +- 0.023 (one chain shifted by 1 sd). The check allows 4
// standard errors of the average (sd rounded up: kSdTau, kSdEss) plus 3% for the bias of the truncated
// Geyer sum (measured +1.7% +- 0.8% on tau), i.e. about 15%: a correct estimator fails it with probability
// < 1e-4 whatever the seeds, while an estimator that ignores the autocorrelation (ESS = M N, 19x too large)
// or drops the factor 2 in tau (~10 instead of 19, -46%) cannot pass.
constexpr int kReplicates = 25;
constexpr double kSdTau = 3.0;
constexpr double kSdEss = 60.0;
constexpr double kBiasAllowance = 0.03;

struct CheckResult {
  bool passed = false;
  std::string detail;
};

using Estimator = std::function<double(const at::Tensor&)>;

// Mean of `estimate` over the replicate sets, against `expected` within 4 standard errors + bias allowance.
CheckResult check_against_closed_form(const Estimator& estimate, double expected, double sd_one) {
  double sum = 0;
  for (int r = 0; r < kReplicates; ++r) sum += estimate(ar1_chains(kChainsAr1, kDrawsAr1, kPhi, 1000 + r));
  const double mean = sum / kReplicates;
  const double tol = 4 * sd_one / std::sqrt(static_cast<double>(kReplicates)) + kBiasAllowance * expected;
  std::ostringstream s;
  s << "mean estimate " << mean << " vs closed form " << expected << " (tolerance " << tol << ")";
  return {std::abs(mean - expected) <= tol, s.str()};
}

CheckResult check_tau(const Estimator& tau) { return check_against_closed_form(tau, kTauAr1, kSdTau); }
CheckResult check_ess(const Estimator& ess) {
  return check_against_closed_form(ess, kChainsAr1 * kDrawsAr1 / kTauAr1, kSdEss);
}

// Split R-hat of well-mixed chains is not 1 but about sqrt(1 + (tau - 1) / n) (B/N holds the sampling
// variance tau/n of the split-chain means, n = 1000 draws each): 1.009 for these chains, which is why the
// usual "< 1.01" holds for only ~60% of seeds here (it is calibrated for many more effective draws; see the
// long-chain case in the test below). With one chain shifted by one stationary sd, 2 of the 8 split chains
// are shifted: B/N ~ (6 x 0.25^2 + 2 x 0.75^2) / 7 = 0.214 against W ~ 1, so R-hat ~ sqrt(1.214) = 1.10
// (rank normalisation rescales W and B/N alike); the classical 1.1 threshold is that expectation, not a
// bound. The check therefore averages over the replicate sets (standard errors 0.001 and 0.005) and asks
// for < 1.015 when mixed and > 1.08 with the shift: 5 standard errors from the measured means.
CheckResult check_rhat(const Estimator& rhat) {
  double mixed = 0, apart = 0;
  for (int r = 0; r < kReplicates; ++r) {
    auto x = ar1_chains(kChainsAr1, kDrawsAr1, kPhi, 1000 + r);
    mixed += rhat(x) / kReplicates;
    x[0] += 1.0;
    apart += rhat(x) / kReplicates;
  }
  std::ostringstream s;
  s << "mean R-hat " << mixed << " for mixed chains, " << apart << " with one chain shifted by 1 sd";
  return {mixed < 1.015 && apart > 1.08, s.str()};
}

// Deliberately broken estimators: the checks above must reject each.
double tau_ignoring_autocorrelation(const at::Tensor&) { return 1.0; }
double ess_ignoring_autocorrelation(const at::Tensor& x) { return static_cast<double>(x.numel()); }
double tau_without_factor_two(const at::Tensor& x) {
  // 1 + sum rho_t instead of 1 + 2 sum rho_t (same Geyer truncation).
  return 0.5 * (integrated_autocorrelation_time(x) + 1.0);
}
double rhat_within_only(const at::Tensor& x) {
  // Ignores the between-chain variance: sqrt(((N-1)/N) W / W).
  const double n = static_cast<double>(x.size(1));
  return std::sqrt((n - 1) / n);
}

}  // namespace

TEST_CASE("Autocovariance by FFT equals the direct sum", "[metrics][mcmc]") {
  auto x = ar1_chains(3, 37, 0.5, 5);
  CHECK(at::allclose(autocovariance(x), autocovariance_direct(x), 1e-10, 1e-12));
}

TEST_CASE("Rank normalisation averages ties and maps ranks through Blom's positions", "[metrics][mcmc]") {
  auto x = at::tensor({3.0, 1.0, 3.0, 2.0}, at::TensorOptions().dtype(at::kDouble)).view({2, 2});
  auto z = rank_normalize(x);
  // Ranks 3.5, 1, 3.5, 2 of S = 4: p = (r - 3/8) / 4.25.
  auto p = [](double r) { return (r - 0.375) / 4.25; };
  auto phi_inv = [](double q) {
    return std::sqrt(2.0) * at::erfinv(at::scalar_tensor(2 * q - 1, at::kDouble)).item<double>();
  };
  CHECK(z[0][0].item<double>() == Approx(phi_inv(p(3.5))));
  CHECK(z[0][1].item<double>() == Approx(phi_inv(p(1.0))));
  CHECK(z[0][0].item<double>() == z[1][0].item<double>());
  CHECK(z[1][1].item<double>() == Approx(phi_inv(p(2.0))));
}

TEST_CASE("Split chains drop the middle draw of an odd chain", "[metrics][mcmc]") {
  auto x = at::arange(10, at::kDouble).view({2, 5});
  auto s = split_chains(x);
  REQUIRE(s.sizes() == at::IntArrayRef({4, 2}));
  CHECK(s[0][0].item<double>() == 0);
  CHECK(s[2][0].item<double>() == 3);
  CHECK(s[3][1].item<double>() == 9);
}

TEST_CASE("AR(1) chains: autocorrelation time and bulk ESS match the closed form", "[metrics][mcmc][statistical]") {
  const auto tau = check_tau(integrated_autocorrelation_time);
  INFO(tau.detail);
  CHECK(tau.passed);
  const auto ess = check_ess(ess_bulk);
  INFO(ess.detail);
  CHECK(ess.passed);
  // Tail ESS: the 5% indicator of a Gaussian AR(1) with phi = 0.9 has tau_I = 1 + 2 sum_t (Phi_2(q, q;
  // phi^t) - p^2) / (p (1 - p)) = 8.57 (bivariate normal CDF, computed with scipy), so each quantile's ESS
  // is ~934; the minimum of the two noisy estimates lies somewhat below. A plausible range: above the bulk
  // ESS, below the closed form plus noise.
  double tail = 0;
  for (int r = 0; r < kReplicates; ++r) tail += ess_tail(ar1_chains(kChainsAr1, kDrawsAr1, kPhi, 1000 + r));
  tail /= kReplicates;
  INFO("mean tail ESS " << tail);
  CHECK(tail > kChainsAr1 * kDrawsAr1 / kTauAr1);
  CHECK(tail > 0.7 * 934);
  CHECK(tail < 1.1 * 934);
}

TEST_CASE("AR(1) chains: the checks reject estimators that ignore or halve the autocorrelation", "[metrics][mcmc][statistical]") {
  CHECK_FALSE(check_tau(tau_ignoring_autocorrelation).passed);
  CHECK_FALSE(check_tau(tau_without_factor_two).passed);
  CHECK_FALSE(check_ess(ess_ignoring_autocorrelation).passed);
  CHECK_FALSE(check_rhat(rhat_within_only).passed);
}

TEST_CASE("Split R-hat is near 1 for mixed chains and flags a shifted chain or a chain of another scale", "[metrics][mcmc]") {
  const auto r = check_rhat(split_rhat);
  INFO(r.detail);
  CHECK(r.passed);
  // With ten times longer chains (about 4200 effective draws) the usual single-set threshold 1.01 holds
  // (expected sqrt(1 + 18 / 10000) = 1.0009).
  CHECK(split_rhat(ar1_chains(kChainsAr1, 10 * kDrawsAr1, kPhi, 79)) < 1.01);
  // A chain with three times the spread: same location, so only the folded R-hat sees it.
  auto x = ar1_chains(kChainsAr1, kDrawsAr1, kPhi, 78);
  x[0] *= 3.0;
  CHECK(rhat_basic(rank_normalize(split_chains(x))) < 1.02);
  CHECK(split_rhat(x) > 1.05);
  // Constant draws have nothing to judge: NaN from the estimator (the metrics turn it into "not computed").
  CHECK(std::isnan(split_rhat(at::ones({4, 10}, at::kDouble))));
  CHECK(std::isnan(ess_bulk(at::ones({4, 10}, at::kDouble))));
  CHECK_THROWS_AS(split_rhat(at::zeros({1, 10}, at::kDouble)), std::invalid_argument);
  CHECK_THROWS_AS(ess_bulk(at::zeros({4, 3}, at::kDouble)), std::invalid_argument);
}

TEST_CASE("calibration of the AR(1) checks", "[.mcmc_calibration]") {
  // Run by hand (psbench_tests_metrics "[.mcmc_calibration]") to measure the spread behind kSdTau / kSdEss.
  const int n = 400;
  std::vector<double> taus, esss, tails, rhats, shifted;
  for (int r = 0; r < n; ++r) {
    auto x = ar1_chains(kChainsAr1, kDrawsAr1, kPhi, 50000 + r);
    taus.push_back(integrated_autocorrelation_time(x));
    esss.push_back(ess_bulk(x));
    tails.push_back(ess_tail(x));
    rhats.push_back(split_rhat(x));
    x[0] += 1.0;
    shifted.push_back(split_rhat(x));
  }
  auto stats = [](const std::vector<double>& v) {
    auto t = at::tensor(v, at::TensorOptions().dtype(at::kDouble));
    std::ostringstream s;
    s << "mean " << t.mean().item<double>() << " sd " << t.std().item<double>() << " min " << t.min().item<double>()
      << " max " << t.max().item<double>();
    return s.str();
  };
  WARN("tau: " << stats(taus));
  WARN("ess_bulk: " << stats(esss));
  WARN("ess_tail: " << stats(tails));
  WARN("rhat: " << stats(rhats));
  WARN("rhat shifted: " << stats(shifted));
}

TEST_CASE("MCMC diagnostic metrics need chains of at least 4 draws, R-hat also 2 chains", "[metrics][mcmc]") {
  auto make = [](const char* name) {
    const auto& e = MetricRegistry::instance().get(name, "metric");
    return e.make(resolve_options(name, e.options, {}));
  };
  MetricContext one_draw_per_chain{{8}, false, 100, 100, 1};
  MetricContext one_chain{{8}, false, 100, 1, 100};
  MetricContext four_chains{{8}, false, 100, 4, 25};
  for (const char* name : {"ess_bulk", "ess_tail", "rhat", "iat"}) {
    CAPTURE(name);
    auto m = make(name);
    CHECK(m->sampler_unsupported(one_draw_per_chain).find("one draw per chain") != std::string::npos);
    CHECK(m->sampler_unsupported(four_chains).empty());
    CHECK(m->unsupported(four_chains).empty());
    CHECK(m->sampler_unsupported(one_chain).empty() == (std::string(name) != "rhat"));
  }
  auto rhat = make("rhat");
  CHECK(rhat->lower_is_better());
  CHECK(rhat->target(10) == 1.0);
  CHECK_FALSE(make("ess_bulk")->lower_is_better());
  CHECK_FALSE(make("ess_tail")->lower_is_better());
  CHECK(make("iat")->lower_is_better());
  // At run time: one live chain left after divergence.
  MetricInput in;
  in.x_true = at::zeros({8}, at::kDouble);
  in.samples = ar1_chains(1, 100, 0.5, 3).t().contiguous().expand({100, 8}).contiguous();
  in.chains = 1;
  CHECK_THROWS_AS(rhat->compute(in), MetricNotApplicable);
  CHECK(make("ess_bulk")->compute(in) > 0);
  in.chains = 0;
  CHECK_THROWS_AS(make("ess_bulk")->compute(in), MetricNotApplicable);
}

TEST_CASE("A metric that cannot score one measurement leaves the cell and is recorded in metrics_skipped", "[metrics][mcmc]") {
  auto ex = parse_experiment_text(R"(
name: mcmc_skip
seed: 1
measurements: 1
samples_per_measurement: 8
tasks: [{name: gmm_lowrank, d_y: 2, sigma_y: 0.1}]
priors: [{name: gmm, dim: 8, ode_steps: 4}]
samplers: [exact]
)", "inline.yaml");
  PriorCache priors;
  const Prior& prior = priors.get(ex.cells[0].prior, ex.cells[0].seed);
  const auto& e = MetricRegistry::instance().get("rhat", "metric");
  auto rhat = e.make(resolve_options("rhat", e.options, {}));
  const auto& e2 = MetricRegistry::instance().get("ess_bulk", "metric");
  auto ess = e2.make(resolve_options("ess_bulk", e2.options, {}));
  auto draws = [](uint64_t seed) { return ar1_chains(4, 50, 0.5, seed).view({200, 1}).expand({200, 8}).contiguous(); };
  std::vector<ScoredMeasurement> ms(2);
  for (int m = 0; m < 2; ++m) {
    ms[m].x_true = at::zeros({8}, at::kDouble);
    ms[m].y = at::zeros({2}, at::kDouble);
    ms[m].seed = 10 + m;
  }
  ms[0].samples = draws(1);
  ms[0].chains = 4;
  ms[1].samples = draws(2).narrow(0, 0, 50);  // three of four chains diverged
  ms[1].chains = 1;
  CellRecord rec;
  aggregate_metrics({{"rhat", rhat.get()}, {"ess_bulk", ess.get()}}, prior, true, ms, {}, rec);
  CHECK(rec.arrays.count("metrics/rhat") == 0);
  CHECK(rec.arrays.count("metric_arrays/rhat/per_summary/m0000") == 0);
  CHECK_FALSE(rec.has_attr("metric:rhat"));
  REQUIRE(rec.has_attr(schema::kMetricsSkipped));
  CHECK(rec.attr(schema::kMetricsSkipped).find("rhat: m0001: needs at least 2 chains") != std::string::npos);
  REQUIRE(rec.arrays.count("metrics/ess_bulk") == 1);
  CHECK(rec.arrays.at("metrics/ess_bulk").numel() == 2);
  // No operator: the summaries are the `projections` (3) random projections only.
  CHECK(rec.arrays.at("metric_arrays/ess_bulk/per_summary/m0000").numel() == 3);
}

TEST_CASE("Chain diagnostics through the runner: stored per measurement for Langevin, not computed for DPS", "[metrics][mcmc][runner]") {
  auto ex = parse_experiment_text(R"(
name: mcmc_runner
seed: 3
measurements: 2
samples_per_measurement: 40
store_samples: true
metrics: [ess_bulk, ess_tail, {name: rhat, projections: 2}, iat, mse_to_truth]
tasks: [{name: gmm_lowrank, d_y: 2, sigma_y: 0.3}]
priors: [{name: gmm, dim: 8, ode_steps: 4}]
samplers:
  - {name: noise_langevin, chains: 4, warm_start_steps: 5, warm_start_lr: 0.05, burn_in: 20, step_size: 0.001}
  - {name: dps, steps: 10}
)", "inline.yaml");
  PriorCache priors;
  validate_experiment(ex, priors);  // explicit chain diagnostics are no config error for DPS
  REQUIRE(ex.cells.size() == 2);
  auto langevin = run_cell(ex.cells[0], priors, RunOptions{});
  auto dps = run_cell(ex.cells[1], priors, RunOptions{});
  INFO(langevin.attr("message"));
  REQUIRE(langevin.attr("status") == "ok");
  REQUIRE(dps.attr("status") == "ok");
  for (const char* name : {"ess_bulk", "ess_tail", "rhat", "iat"}) {
    CAPTURE(name);
    const std::string key = std::string("metrics/") + name;
    REQUIRE(langevin.arrays.count(key) == 1);
    const auto v = langevin.arrays.at(key);
    CHECK(v.numel() == 2);
    CHECK(at::isfinite(v).all().item<bool>());
    CHECK(langevin.attr(std::string("metric_level:") + name) == "per_measurement");
    for (const char* m : {"m0000", "m0001"}) {
      const auto per = langevin.arrays.at(std::string("metric_arrays/") + name + "/per_summary/" + m);
      CHECK(per.numel() == (std::string(name) == "rhat" ? 3 : 4));  // potential + projections
    }
    CHECK(dps.arrays.count(key) == 0);
    CHECK(dps.attr(schema::kMetricsSkipped).find(std::string(name) + ": needs at least 4 draws per chain") !=
          std::string::npos);
  }
  // The stored value is the worst summary.
  CHECK(langevin.arrays.at("metrics/ess_bulk")[0].item<double>() ==
        langevin.arrays.at("metric_arrays/ess_bulk/per_summary/m0000").min().item<double>());
  CHECK(langevin.arrays.at("metrics/rhat")[1].item<double>() ==
        langevin.arrays.at("metric_arrays/rhat/per_summary/m0001").max().item<double>());
  CHECK(langevin.attr("metric:ess_bulk") == "higher_is_better");
  CHECK(langevin.attr("metric:ess_tail") == "higher_is_better");
  CHECK(langevin.attr("metric:iat") == "lower_is_better");
  CHECK(langevin.attr("metric:rhat") == "target:1");
  CHECK(dps.arrays.count("metrics/mse_to_truth") == 1);
  CHECK_FALSE(langevin.has_attr(schema::kMetricsSkipped));
  // ESS of 4 chains x 10 draws cannot exceed what the autocorrelation time allows.
  const auto ess = langevin.arrays.at("metrics/ess_bulk"), iat = langevin.arrays.at("metrics/iat");
  CHECK((ess > 0).all().item<bool>());
  CHECK((iat > 0).all().item<bool>());
  // Re-scoring the stored samples gives the same numbers (live chains from the stored chain counts).
  auto again = rescore_cell(langevin, nullptr, priors);
  for (const char* name : {"ess_bulk", "ess_tail", "rhat", "iat"})
    CHECK(at::allclose(again.arrays.at(std::string("metrics/") + name), langevin.arrays.at(std::string("metrics/") + name)));
  // The report shows the columns with their directions and lists what DPS could not compute.
  langevin.attributes[schema::kCellIndex] = "0";
  dps.attributes[schema::kCellIndex] = "1";
  const std::string report = markdown_report({langevin, dps});
  INFO(report);
  CHECK(report.find("ess_bulk ↑") != std::string::npos);
  CHECK(report.find("rhat →1") != std::string::npos);
  CHECK(report.find("iat ↓") != std::string::npos);
  CHECK(report.find("Metrics not computed:") != std::string::npos);
  CHECK(report.find(dps.key.substr(0, 8) + ", ess_bulk, ess_tail, rhat, iat: needs at least 4 draws per chain") !=
        std::string::npos);
}
