// Marginal and mixture-weight metrics against the exact posterior (ALGORITHMS.md §9, "Against an exact
// posterior"): posterior_var_rmse, coverage_90, coverage_90_error, component_weight_error. The sliced
// Wasserstein distance and posterior_mean_rmse (metrics/exact_posterior.cpp) flatten samples already and
// need nothing image-specific.
#include "metrics/exact_images.h"

#include <cmath>

#include "core/errors.h"
#include "core/rng.h"
#include "metrics/metric.h"

namespace psbench {

int64_t central_interval_rank(int64_t k, double level) {
  if (k < 2) throw std::invalid_argument("central interval: needs at least 2 samples, got " + std::to_string(k));
  const int64_t i = std::max<int64_t>(1, std::llround(0.5 * (1.0 - level) * static_cast<double>(k + 1)));
  return std::min(i, (k + 1) / 2);
}

double central_interval_expected_mass(int64_t k, double level) {
  const int64_t i = central_interval_rank(k, level);
  return static_cast<double>(k + 1 - 2 * i) / static_cast<double>(k + 1);
}

at::Tensor central_interval_coverage(const at::Tensor& samples, const at::Tensor& reference, double level) {
  auto s = samples.to(at::kDouble).flatten(1);
  auto r = reference.to(at::kDouble).flatten(1);
  if (s.size(1) != r.size(1))
    throw std::invalid_argument("central interval coverage: samples and reference differ in dimension");
  const int64_t k = s.size(0);
  const int64_t i = central_interval_rank(k, level);
  auto sorted = std::get<0>(s.sort(0));
  auto lo = sorted[i - 1], hi = sorted[k - i];  // x_(i) and x_(K+1-i), 1-based ranks
  auto inside = (r >= lo.unsqueeze(0)).logical_and(r <= hi.unsqueeze(0));
  return inside.to(at::kDouble).mean(0);
}

double component_weight_tv(const at::Tensor& exact_weights, const at::Tensor& assignments) {
  const int64_t k = exact_weights.size(0);
  auto counts = at::bincount(assignments.to(at::kLong).flatten(), {}, k).to(at::kDouble);
  if (counts.size(0) != k) throw std::invalid_argument("component weight error: assignment beyond the components");
  auto frac = counts / static_cast<double>(assignments.numel());
  return 0.5 * (exact_weights.to(at::kDouble) - frac).abs().sum().item<double>();
}

namespace {

// sqrt(mean_j (v_hat_j - v_j)^2): v_hat the unbiased sample variance of coordinate j over the K samples,
// v_j the exact posterior marginal variance.
class PosteriorVarRmse : public Metric {
 public:
  bool lower_is_better() const override { return true; }
  bool needs_exact_posterior() const override { return true; }
  double compute(const MetricInput& in) const override {
    auto s = in.samples.to(at::kDouble).flatten(1);
    if (s.size(0) < 2) throw std::runtime_error("posterior_var_rmse needs at least 2 samples");
    auto v = s.var(0, /*unbiased=*/true);
    auto t = in.exact->marginal_variance().to(at::kDouble).flatten();
    return (v - t).pow(2).mean().sqrt().item<double>();
  }
};

// coverage_90: the mean over coordinates j of the exact posterior mass inside the sampler's central 90%
// interval of coordinate j, [x_(i), x_(K+1-i)] with i = round(0.05 (K + 1)) (central_interval_rank), the mass
// estimated by the fraction of `reference_samples` exact draws inside. A sampler that draws exactly from
// the posterior scores (K + 1 - 2i)/(K + 1) in expectation (0.9005 for K = 200); lower means intervals too
// narrow (over-confident), higher too wide (over-dispersed). coverage_90_error is |coverage_90 - that value|.
class Coverage : public Metric {
 public:
  Coverage(const Options& o, bool error) : level_(o.get_real("level")), reference_(o.get_int("reference_samples")),
                                           error_(error) {}
  // The raw coverage has no better direction: its target is what exact sampling gives with K samples,
  // (K + 1 - 2i)/(K + 1), which tables rank by closeness; coverage_90_error is the distance itself.
  bool lower_is_better() const override { return error_; }
  double target(int64_t num_samples) const override {
    if (error_ || num_samples < 1) return Metric::target(num_samples);
    return central_interval_expected_mass(num_samples, level_);
  }
  bool needs_exact_posterior() const override { return true; }
  double compute(const MetricInput& in) const override {
    auto cov = central_interval_coverage(in.samples, reference_draws(in, reference_), level_).mean().item<double>();
    if (!error_) return cov;
    return std::abs(cov - central_interval_expected_mass(in.samples.size(0), level_));
  }

 private:
  double level_;
  int64_t reference_;
  bool error_;
};

// Total variation between the exact posterior component weights and the fraction of samples that
// ExactPosterior::assign_components puts in each component (the most probable component of each sample).
class ComponentWeightError : public Metric {
 public:
  bool lower_is_better() const override { return true; }
  bool needs_exact_posterior() const override { return true; }
  double compute(const MetricInput& in) const override {
    return component_weight_tv(in.exact->component_weights(), in.exact->assign_components(in.samples));
  }
};

std::vector<OptionSpec> coverage_options() {
  return {OptionSpec::real("level", 0.9, "nominal level of the central interval").above(0).at_most(0.999),
          OptionSpec::integer("reference_samples", 2000,
                              "exact-posterior draws estimating the mass inside each interval")
              .at_least(10)};
}

MetricRegistrar reg_var({"posterior_var_rmse",
                         "RMSE over coordinates between the samples' unbiased variance and the exact posterior "
                         "marginal variance",
                         {},
                         [](const Options&) { return std::make_unique<PosteriorVarRmse>(); }});
MetricRegistrar reg_cov({"coverage_90",
                         "mean over coordinates of the exact posterior mass inside the samples' central 90% "
                         "interval (order statistics i = round(0.05 (K+1)), K+1-i); exact sampling gives "
                         "(K+1-2i)/(K+1) ~ 0.90",
                         coverage_options(), [](const Options& o) { return std::make_unique<Coverage>(o, false); }});
MetricRegistrar reg_cov_err({"coverage_90_error",
                             "|coverage_90 - (K+1-2i)/(K+1)|: distance of the coverage from what exact samples "
                             "give in expectation",
                             coverage_options(),
                             [](const Options& o) { return std::make_unique<Coverage>(o, true); }});
MetricRegistrar reg_weights({"component_weight_error",
                             "total variation between exact posterior mixture weights and the fraction of samples "
                             "assigned to each component",
                             {},
                             [](const Options&) { return std::make_unique<ComponentWeightError>(); }});

}  // namespace
}  // namespace psbench
