#include "metrics/aggregate.h"

#include <cmath>
#include <map>
#include <stdexcept>
#include <utility>

#include "core/rng.h"
#include "store/schema.h"

namespace psbench {
namespace {

namespace sc = schema;

at::Tensor as_tensor(const std::vector<double>& v) {
  return at::tensor(v, at::TensorOptions().dtype(at::kDouble));
}

void check_value(const std::string& name, double v) {
  // +inf is a legitimate value (PSNR of an exact match); NaN never is.
  if (std::isnan(v)) throw std::runtime_error("metric " + name + " is NaN");
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

const char* level_name(MetricLevel level) {
  switch (level) {
    case MetricLevel::PerSample: return sc::kLevelPerSample;
    case MetricLevel::PerMeasurement: return sc::kLevelPerMeasurement;
    case MetricLevel::PerSet: return sc::kLevelPerSet;
  }
  return sc::kLevelPerSet;
}

}  // namespace

void aggregate_metrics(const std::vector<NamedMetric>& metrics, const Prior& prior, bool metrics_explicit,
                       const std::vector<ScoredMeasurement>& ms, const std::vector<std::string>& skipped,
                       CellRecord& rec) {
  const std::string at_mean_suffix = sc::kAtPosteriorMean, best_suffix = sc::kAtBestOfK;
  const int64_t num_samples = ms.empty() ? 0 : ms.front().samples.size(0);
  std::map<std::string, std::vector<double>> values;
  std::map<std::string, std::string> not_applicable;  // metric -> the first measurement it could not score, why
  for (size_t m = 0; m < ms.size(); ++m) {
    const auto& meas = ms[m];
    const int64_t index = meas.index >= 0 ? meas.index : static_cast<int64_t>(m);
    std::unique_ptr<ExactPosterior> exact;
    MetricInput in;
    in.x_true = meas.x_true;
    in.y = meas.y;
    in.samples = meas.samples;
    in.measurement_seed = meas.seed;
    in.op = meas.op;
    in.sigma_y = meas.sigma_y;
    in.label = meas.label;
    in.chains = meas.chains;
    for (const auto& [name, metric] : metrics) {
      if (not_applicable.count(name)) continue;
      if (metric->needs_exact_posterior()) {
        if (!exact) exact = prior.exact_posterior(*meas.op, meas.sigma_y, meas.y.unsqueeze(0));
        if (!exact) {
          if (metrics_explicit) throw std::runtime_error("metric " + name + ": no exact posterior");
          continue;  // defaulted metric that does not apply to this prior
        }
        in.exact = exact.get();
      }
      switch (metric->level()) {
        case MetricLevel::PerSample: {
          auto per = metric->per_sample(in, meas.samples).to(at::kDouble);
          const double mean = per.mean().item<double>();
          const double at_mean =
              metric->per_sample(in, meas.samples.mean(0, true)).to(at::kDouble).item<double>();
          check_value(name, mean);
          check_value(name + at_mean_suffix, at_mean);
          values[name].push_back(mean);
          values[name + at_mean_suffix].push_back(at_mean);
          if (metric->best_of_k()) {
            const double best = (metric->lower_is_better() ? per.min() : per.max()).item<double>();
            values[name + best_suffix].push_back(best);
          }
          break;
        }
        case MetricLevel::PerMeasurement: {
          double v = 0;
          std::map<std::string, at::Tensor> extra;
          try {
            v = metric->compute(in);
            extra = metric->extra_arrays(in);
          } catch (const MetricNotApplicable& e) {
            // One measurement it cannot score: the metric leaves the cell (no partial arrays).
            not_applicable[name] = sc::measurement_name(index) + ": " + e.what();
            values.erase(name);
            const std::string prefix = sc::kMetricArraysGroup + name + "/";
            for (auto it = rec.arrays.begin(); it != rec.arrays.end();)
              it = starts_with(it->first, prefix.c_str()) ? rec.arrays.erase(it) : std::next(it);
            break;
          }
          check_value(name, v);
          values[name].push_back(v);
          for (const auto& [suffix, t] : extra)
            rec.arrays[sc::kMetricArraysGroup + name + "/" + suffix + "/" + sc::measurement_name(index)] = t;
          break;
        }
        case MetricLevel::PerSet: break;
      }
    }
  }
  // Per-set metrics: all measurements' samples pooled, and the posterior means (one per measurement).
  SetInput pooled, means;
  std::vector<at::Tensor> xs;
  for (const auto& meas : ms) {
    pooled.samples.push_back(meas.samples);
    means.samples.push_back(meas.samples.mean(0, true));
    xs.push_back(meas.x_true);
  }
  if (!ms.empty()) {
    pooled.x_true = means.x_true = at::stack(xs);
    pooled.seed = means.seed = derive_seed({ms[0].seed, static_cast<uint64_t>(ms.size()), static_cast<uint64_t>(Stream::Metric)});
  }
  for (const auto& [name, metric] : metrics) {
    if (metric->level() == MetricLevel::PerSet && !ms.empty()) {
      for (const auto& [label, input] : {std::pair<std::string, const SetInput*>{name, &pooled},
                                         std::pair<std::string, const SetInput*>{name + at_mean_suffix, &means}}) {
        SetValue v;
        try {
          v = metric->compute_set(*input);
        } catch (const MetricNotApplicable& e) {
          // Too few points for this set (e.g. one posterior mean per measurement in a one-measurement cell).
          not_applicable[label] = e.what();
          continue;
        }
        check_value(label, v.value);
        values[label].push_back(v.value);
        if (!std::isnan(v.spread)) rec.arrays[sc::kMetricSpreadGroup + label] = as_tensor(std::vector<double>{v.spread});
        if (!v.warning.empty()) rec.attributes[sc::kWarningPrefix + label] = v.warning;
      }
    }
    std::vector<std::string> labels{name};
    if (metric->level() != MetricLevel::PerMeasurement) labels.push_back(name + at_mean_suffix);
    if (metric->level() == MetricLevel::PerSample && metric->best_of_k()) labels.push_back(name + best_suffix);
    for (const auto& label : labels) {
      if (!values.count(label)) continue;
      const double target = metric->target(num_samples);
      rec.attributes[sc::kMetricDirectionPrefix + label] =
          !std::isnan(target) ? sc::kTargetPrefix + format_value(target)
                              : (metric->lower_is_better() ? sc::kLowerIsBetter : sc::kHigherIsBetter);
      rec.attributes[sc::kMetricLevelPrefix + label] = level_name(metric->level());
      for (const auto& [k, v] : metric->provenance())
        rec.attributes[sc::kMetricProvenancePrefix + k + ":" + label] = v;
    }
  }
  for (const auto& [name, v] : values) rec.arrays[sc::kMetricsGroup + name] = as_tensor(v);
  std::vector<std::string> all_skipped = skipped;
  for (const auto& [name, why] : not_applicable) all_skipped.push_back(name + ": " + why);
  if (!all_skipped.empty()) {
    std::string s;
    for (const auto& m : all_skipped) s += (s.empty() ? "" : "\n") + m;
    rec.attributes[sc::kMetricsSkipped] = s;
  }
}

void drop_metric_entries(CellRecord& rec) {
  for (auto it = rec.arrays.begin(); it != rec.arrays.end();) {
    const auto& k = it->first;
    const bool metric = starts_with(k, sc::kMetricsGroup) || starts_with(k, sc::kMetricArraysGroup) ||
                        starts_with(k, sc::kMetricSpreadGroup) || k == sc::kScoredMeasurements;
    it = metric ? rec.arrays.erase(it) : std::next(it);
  }
  for (auto it = rec.attributes.begin(); it != rec.attributes.end();) {
    const auto& k = it->first;
    // metric:, metric_level:, metric_<key>: and metrics_skipped all start with "metric".
    const bool metric = starts_with(k, sc::kMetricDirectionPrefix) || starts_with(k, sc::kMetricProvenancePrefix) ||
                        k == sc::kMetricsSkipped || starts_with(k, sc::kWarningPrefix);
    it = metric ? rec.attributes.erase(it) : std::next(it);
  }
}

}  // namespace psbench
