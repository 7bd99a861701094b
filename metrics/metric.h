#pragma once
// Metrics: registered by name, each declares its direction and level. Metrics never call samplers.
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>

#include "core/options.h"
#include "core/registry.h"
#include "priors/prior.h"

namespace psbench {

enum class MetricLevel { PerSample, PerMeasurement, PerSet };

struct MetricInput {
  at::Tensor x_true;               // [*shape]
  at::Tensor y;                    // [*output_shape]
  at::Tensor samples;              // [K, *shape], from non-diverged chains only
  const ExactPosterior* exact = nullptr;  // closed-form posterior when the prior has one
  uint64_t measurement_seed = 0;   // depends on the measurement only: same projections for every sampler
  // Exact-posterior reference draws already made for this measurement, by count (see reference_draws).
  mutable std::map<int64_t, at::Tensor> reference_cache;
};

// `n` exact-posterior draws from the measurement's Reference stream: every sampler of a measurement, and
// every metric of a cell, is judged against the same draws, made once per measurement and count.
const at::Tensor& reference_draws(const MetricInput& in, int64_t n);

class Metric {
 public:
  virtual ~Metric() = default;
  virtual bool lower_is_better() const = 0;
  virtual MetricLevel level() const { return MetricLevel::PerMeasurement; }
  virtual bool needs_exact_posterior() const { return false; }
  // One number per measurement (per-sample metrics return their mean over the K samples).
  virtual double compute(const MetricInput& in) const = 0;
};

using MetricRegistry = Registry<Metric>;
using MetricRegistrar = Registrar<Metric>;

// Sliced Wasserstein-2 between two point clouds [n, d] and [m, d] (sizes may differ):
// sqrt of the mean over random unit directions of the exact 1-D W_2^2 between the projections.
double sliced_wasserstein(const at::Tensor& a, const at::Tensor& b, int64_t projections, at::Generator& gen);
// Exact W_2^2 between the empirical distributions of two sorted 1-D samples, per column: [n, P], [m, P] -> [P].
at::Tensor wasserstein2_sq_sorted(const at::Tensor& a_sorted, const at::Tensor& b_sorted);

}  // namespace psbench
