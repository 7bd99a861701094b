#pragma once
// From metric values to stored numbers: how each metric level is aggregated over the K samples of a
// measurement and over the measurements of a cell, and which arrays and attributes that produces (names
// from store/schema.h). The runner only hands over the cell's measurements and samples.
//
// - PerSample: the mean over the K samples under the metric's name, the score of the posterior mean
//   (mean of the K samples) under <name>@posterior_mean and, only with the metric's best_of_k option,
//   the best of the K scores under <name>@best_of_k; one value per measurement each.
// - PerMeasurement: one value per measurement, plus the metric's extra arrays (metric_arrays/...).
// - PerSet: one value for all measurements' samples pooled, and one for the set of posterior means
//   (<name>@posterior_mean), with spread (metric_spread/...) and warnings (warning:<label>).
// Every label gets its direction (metric:), level (metric_level:) and the metric's provenance
// (metric_<key>:) as attributes.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/metric.h"
#include "store/result_store.h"

namespace psbench {

// A metric of the cell under its registry name.
struct NamedMetric {
  std::string name;
  const Metric* metric = nullptr;
};

// One measurement with its posterior samples.
struct ScoredMeasurement {
  at::Tensor x_true;   // [*shape]
  at::Tensor y;        // [*output_shape], without the batch dimension
  at::Tensor samples;  // [K, *shape]
  const Operator* op = nullptr;
  double sigma_y = 0;
  uint64_t seed = 0;   // the measurement's seed
  int64_t label = -1;
  int64_t chains = 0;  // live chains behind `samples` (chain-major), 0 = unknown
  int64_t index = -1;  // the measurement's index in the cell (names metric_arrays/.../mNNNN); -1 = position
};

// Scores every measurement and the whole set and writes metrics/..., metric_arrays/...,
// metric_spread/... and the metrics' attributes into `rec` (plus metrics_skipped from `skipped`, the
// metrics that could not be built or do not suit the cell's sampler, with the reason). A metric whose
// compute() throws MetricNotApplicable for some measurement is left out of the cell altogether (no
// arrays, no attributes) and the measurement and reason are added to metrics_skipped. Metrics that need an exact posterior
// ask `prior` for one; when it has none, an explicit metric list (`metrics_explicit`) is a runtime
// error and a defaulted metric is left out. A NaN value is a runtime error.
void aggregate_metrics(const std::vector<NamedMetric>& metrics, const Prior& prior, bool metrics_explicit,
                       const std::vector<ScoredMeasurement>& measurements, const std::vector<std::string>& skipped,
                       CellRecord& rec);

// Removes every array and attribute aggregate_metrics writes, and the runner's scored_measurements that
// indexes them (before re-scoring, or from a failed cell).
void drop_metric_entries(CellRecord& rec);

}  // namespace psbench
