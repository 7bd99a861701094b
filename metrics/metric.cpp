// Default implementations of the Metric levels: a metric overrides the one matching its level.
#include "metrics/metric.h"

#include <stdexcept>

namespace psbench {

double Metric::compute(const MetricInput& in) const {
  if (level() != MetricLevel::PerSample) throw std::logic_error("metric without a per-measurement computation");
  return per_sample(in, in.samples).to(at::kDouble).mean().item<double>();
}

at::Tensor Metric::per_sample(const MetricInput&, const at::Tensor&) const {
  throw std::logic_error("metric without a per-sample computation");
}

SetValue Metric::compute_set(const SetInput&) const { throw std::logic_error("metric without a per-set computation"); }

std::string image_shape_problem(const std::vector<int64_t>& shape, int64_t min_side) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  s += "]";
  if (shape.size() != 3 || (shape[0] != 1 && shape[0] != 3))
    return "needs images [C, H, W] with C = 1 or 3, the data have shape " + s;
  if (shape[1] < min_side || shape[2] < min_side)
    return "needs images of at least " + std::to_string(min_side) + "x" + std::to_string(min_side) + " pixels, got " + s;
  return "";
}

}  // namespace psbench
