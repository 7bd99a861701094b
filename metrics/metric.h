#pragma once
// Metrics: registered by name, each declares its direction and level. Metrics never call samplers.
//
// Levels and aggregation (honest by construction; see README "Metrics"):
// - PerSample: per_sample() scores each of the K samples of a measurement against x*, y or the label.
//   The runner stores the mean over the K samples under the metric's name, the score of the posterior
//   mean (the mean of the K samples) under "<name>@posterior_mean" and, only when the metric's
//   `best_of_k` option is set, the best of the K scores under "<name>@best_of_k" — selection against
//   the ground truth never hides under the plain name.
// - PerMeasurement: compute() gives one number from the K samples of one measurement.
// - PerSet: compute_set() sees every measurement's samples and ground truth of a cell at once
//   (Fréchet distance, KID): one number per cell.
#include <ATen/ATen.h>

#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/registry.h"
#include "priors/prior.h"

namespace psbench {

class Operator;

enum class MetricLevel { PerSample, PerMeasurement, PerSet };

struct MetricInput {
  at::Tensor x_true;               // [*shape]
  at::Tensor y;                    // [*output_shape]
  at::Tensor samples;              // [K, *shape], from non-diverged chains only
  const ExactPosterior* exact = nullptr;  // closed-form posterior when the prior has one
  const Operator* op = nullptr;    // the measurement's forward operator A
  double sigma_y = 0;              // its noise level
  int64_t label = -1;              // class of x* when the dataset has labels, else -1
  uint64_t measurement_seed = 0;   // depends on the measurement only: same projections for every sampler
  // Live (non-diverged) chains behind `samples`, which are chain-major: chain c's j-th kept draw is row
  // c * N + j, N = K / chains draws per chain. 0 = unknown.
  int64_t chains = 0;
  // Exact-posterior reference draws already made for this measurement, by count (see reference_draws).
  mutable std::map<int64_t, at::Tensor> reference_cache;
};

// Everything a per-set metric sees: the cell's measurements, in order.
struct SetInput {
  std::vector<at::Tensor> samples;  // per measurement [K_m, *shape]
  at::Tensor x_true;                // [M, *shape]
  uint64_t seed = 0;                // for random subsets (KID): depends on the cell's measurements only
};

struct SetValue {
  double value = 0;
  double spread = std::numeric_limits<double>::quiet_NaN();  // e.g. KID's std over subsets; NaN if none
  std::string warning;                                       // shown with the report, empty if none
};

// What a metric needs of the data to apply at all (checked before any work).
struct MetricContext {
  std::vector<int64_t> data_shape;  // one x
  bool has_labels = false;
  int64_t samples = 0;              // K per measurement (0 = unknown)
  // The sampler's chain structure for K samples (Sampler::num_chains): `chains` chains of
  // `draws_per_chain` kept draws each (1 for samplers that run one chain per sample). 0 = unknown.
  int64_t chains = 0;
  int64_t draws_per_chain = 0;
  bool draws_form_chains = true;  // Sampler::draws_form_chains: the draws of a chain are a Markov chain
};

// Thrown by compute() when this measurement's samples cannot be scored by the metric for a reason found
// only at run time (fewer live chains after divergence than the metric needs, a constant summary): the
// metric is left out of the cell and the reason recorded in metrics_skipped; never a made-up value.
struct MetricNotApplicable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Metric {
 public:
  virtual ~Metric() = default;
  virtual bool lower_is_better() const = 0;
  // Metrics with a target value rather than a direction (data consistency: 1; a coverage: what exact
  // sampling gives with `num_samples` samples per measurement); NaN = none.
  virtual double target(int64_t num_samples) const { return std::numeric_limits<double>::quiet_NaN(); }
  virtual MetricLevel level() const { return MetricLevel::PerMeasurement; }
  virtual bool needs_exact_posterior() const { return false; }
  // Empty when the metric applies to this data, else why not ("needs images [1, 28, 28]").
  virtual std::string unsupported(const MetricContext&) const { return ""; }
  // Empty when the cell's sampling suits the metric, else why not (MCMC diagnostics of a sampler that
  // runs one chain per sample; diversity with K = 1). Unlike unsupported(), a property of the cell's
  // sampler and sample count rather than of the data: the cell runs without the metric and records the reason in metrics_skipped, also when the
  // metric is listed explicitly, so one experiment can ask for chain diagnostics across all samplers.
  virtual std::string sampler_unsupported(const MetricContext&) const { return ""; }
  // PerMeasurement: one number per measurement.
  virtual double compute(const MetricInput& in) const;
  // PerSample: one score per image of `images` [N, *shape], judged against in.x_true / in.y / in.label.
  virtual at::Tensor per_sample(const MetricInput& in, const at::Tensor& images) const;
  // PerSample metrics also store the best of K under its own name when this is true.
  virtual bool best_of_k() const { return false; }
  // PerSet: one number per cell (with optional spread and warning).
  virtual SetValue compute_set(const SetInput& in) const;
  // PerMeasurement metrics may add arrays (e.g. the per-pixel standard deviation map), by suffix.
  virtual std::map<std::string, at::Tensor> extra_arrays(const MetricInput&) const { return {}; }
  // Network name, weight file and its sha256 for metrics computed on a network.
  virtual std::map<std::string, std::string> provenance() const { return {}; }
};

using MetricRegistry = Registry<Metric>;
using MetricRegistrar = Registrar<Metric>;

// Thrown by a metric factory when the metric cannot exist without a user-supplied file (fid, kid,
// lpips_alex, lpips_vgg without network_path): a defaulted metric list skips such metrics, an explicit
// one reports the error.
struct MetricUnavailable : ConfigError {
  using ConfigError::ConfigError;
};

// Sliced Wasserstein-2 between two point clouds [n, d] and [m, d] (sizes may differ):
// sqrt of the mean over random unit directions of the exact 1-D W_2^2 between the projections.
double sliced_wasserstein(const at::Tensor& a, const at::Tensor& b, int64_t projections, at::Generator& gen);
// `projections` random unit directions in R^dim as the columns of a float64 [dim, projections] matrix.
at::Tensor random_unit_directions(int64_t dim, int64_t projections, at::Generator& gen);
// Exact W_2^2 between the empirical distributions of two sorted 1-D samples, per column: [n, P], [m, P] -> [P].
at::Tensor wasserstein2_sq_sorted(const at::Tensor& a_sorted, const at::Tensor& b_sorted);
// Per column, the integral of |Q_a - Q_b|^p over the quantile levels: W_p^p of two 1-D empirical measures.
at::Tensor wasserstein_pow_sorted(const at::Tensor& a_sorted, const at::Tensor& b_sorted, double p);
// The MCGdiff benchmark's sliced Wasserstein: the mean over random unit directions of W_1 of the projections.
double sliced_wasserstein_mean_w1(const at::Tensor& a, const at::Tensor& b, int64_t projections, at::Generator& gen);

// `n` exact-posterior draws from the measurement's Reference stream: every sampler of a measurement, and
// every metric of a cell, is judged against the same draws, made once per measurement and count.
const at::Tensor& reference_draws(const MetricInput& in, int64_t n);

// "" when the cell draws at least 2 samples per measurement, else why a diversity metric cannot apply.
inline std::string at_least_two_samples(const MetricContext& c) {
  return c.samples == 1 ? "needs at least 2 samples per measurement" : "";
}

// Shape check shared by image metrics: "" when `shape` is [C, H, W] with C in {1, 3}.
std::string image_shape_problem(const std::vector<int64_t>& shape, int64_t min_side = 1);

}  // namespace psbench
