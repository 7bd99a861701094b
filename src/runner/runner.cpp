#include "runner/runner.h"

#include <torch/version.h>

#include <cmath>
#include <cstdio>

#include "core/errors.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "metrics/metric.h"
#include "operators/operator.h"
#include "samplers/sampler.h"

namespace psbench {

const Prior& PriorCache::get(const Options& given, uint64_t seed) {
  Options prior = given;
  if (!device_.empty() && prior.values().count("device")) prior.set("device", device_);
  const std::string key = device_ + "/" + std::to_string(seed) + "/" + prior.canonical();
  auto it = priors_.find(key);
  if (it != priors_.end()) return *it->second;
  const auto& entry = PriorRegistry::instance().get(prior.component(), "prior");
  auto p = entry.make(prior, derive_seed({seed, static_cast<uint64_t>(Stream::PriorParams)}));
  return *(priors_[key] = std::move(p));
}

std::map<std::string, std::string> provenance(const RunOptions& opts) {
  return {{"psbench_version", PSBENCH_VERSION},
          {"git_revision", git_revision()},
          {"libtorch_version", TORCH_VERSION},
          {"threads", std::to_string(opts.threads)},
          {"device", opts.device},
          {"build_type", PSBENCH_BUILD_TYPE}};
}

namespace {

struct MetricSlot {
  Options options;
  std::unique_ptr<Metric> metric;
};

struct Components {
  const Prior* prior = nullptr;
  std::unique_ptr<Dataset> dataset;
  std::unique_ptr<Task> task;
  std::unique_ptr<Sampler> sampler;
  std::vector<MetricSlot> metrics;
  std::vector<std::string> skipped_metrics;  // defaulted metrics that do not apply, with the reason
};

// Builds the cell's components. Metrics listed explicitly must apply (else ConfigError); a defaulted
// metric that does not apply to the data, or needs a user-supplied file, is skipped and the reason kept.
Components build(const CellSpec& spec, PriorCache& priors) {
  Components c;
  c.prior = &priors.get(spec.prior, spec.seed);
  c.dataset = DatasetRegistry::instance().get(spec.dataset.component(), "dataset").make(spec.dataset);
  c.task = TaskRegistry::instance().get(spec.task.component(), "task").make(spec.task);
  c.sampler = SamplerRegistry::instance().get(spec.sampler.component(), "sampler").make(spec.sampler);
  MetricContext ctx;
  ctx.data_shape = c.dataset->shape(*c.prior);
  ctx.has_labels = c.dataset->has_labels();
  ctx.samples = spec.samples_per_measurement;
  for (const auto& m : spec.metrics) {
    std::unique_ptr<Metric> metric;
    try {
      metric = MetricRegistry::instance().get(m.component(), "metric").make(m);
    } catch (const MetricUnavailable& e) {
      // Needs a user-supplied file (fid, lpips_alex...): only ever run when asked for.
      if (spec.metrics_explicit) throw ConfigError("metric " + m.component() + ": " + e.what());
      continue;
    } catch (const ConfigError& e) {
      if (spec.metrics_explicit) throw ConfigError("metric " + m.component() + ": " + e.what());
      c.skipped_metrics.push_back(m.component() + ": " + e.what());
      continue;
    }
    if (auto why = metric->unsupported(ctx); !why.empty()) {
      if (spec.metrics_explicit) throw ConfigError("metric " + m.component() + " " + why);
      continue;  // a defaulted metric for other data (image metrics on vectors): not an event worth keeping
    }
    c.metrics.push_back({m, std::move(metric)});
  }
  return c;
}

std::string describe(const CellSpec& s) {
  return "cell " + s.key() + " (task " + s.task.component() + ", prior " + s.prior.component() + ", sampler " +
         s.sampler.component() + ")";
}

at::Tensor as_tensor(const std::vector<double>& v) {
  return at::tensor(v, at::TensorOptions().dtype(at::kDouble));
}
at::Tensor as_tensor(const std::vector<int64_t>& v) { return at::tensor(v, at::TensorOptions().dtype(at::kLong)); }

std::string index_name(int64_t m) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "m%04lld", static_cast<long long>(m));
  return buf;
}

// One measurement as the metrics see it.
struct Measurement {
  at::Tensor x_true, y, samples;  // y without the batch dimension
  MeasurementModel model;
  uint64_t seed = 0;
  int64_t label = -1;
};

// The measurement's ground truth, operator and y: depends on (seed, task, dataset[, prior], m) only.
Measurement make_measurement(const CellSpec& spec, const Components& c, int64_t m) {
  Measurement out;
  out.seed = spec.measurement_seed(m, c.dataset->uses_prior());
  auto gt_gen = make_generator(derive_seed({out.seed, static_cast<uint64_t>(Stream::GroundTruth)}));
  auto op_gen = make_generator(derive_seed({out.seed, static_cast<uint64_t>(Stream::Operator)}));
  auto noise_gen = make_generator(derive_seed({out.seed, static_cast<uint64_t>(Stream::Noise)}));
  out.x_true = c.dataset->ground_truth(m, *c.prior, gt_gen).to(c.prior->dtype());
  out.model = c.task->build(c.dataset->shape(*c.prior), op_gen);
  out.y = out.model.noise.sample(out.model.op->forward(out.x_true.unsqueeze(0)), noise_gen)[0];
  out.label = c.dataset->label(m);
  return out;
}

void check_value(const std::string& name, double v) {
  // +inf is a legitimate value (PSNR of an exact match); NaN never is.
  if (std::isnan(v)) throw std::runtime_error("metric " + name + " is NaN");
}

// Scores every measurement and the whole set; writes metrics/..., metric_arrays/... and the metrics'
// attributes (direction, level, network provenance, warnings) into `rec`.
void score_cell(const CellSpec& spec, const Components& c, const std::vector<Measurement>& ms, CellRecord& rec) {
  std::map<std::string, std::vector<double>> values;
  for (size_t m = 0; m < ms.size(); ++m) {
    const auto& meas = ms[m];
    std::unique_ptr<ExactPosterior> exact;
    MetricInput in;
    in.x_true = meas.x_true;
    in.y = meas.y;
    in.samples = meas.samples;
    in.measurement_seed = meas.seed;
    in.op = meas.model.op.get();
    in.sigma_y = meas.model.noise.sigma_y;
    in.label = meas.label;
    for (const auto& [o, metric] : c.metrics) {
      const std::string& name = o.component();
      if (metric->needs_exact_posterior()) {
        if (!exact) exact = c.prior->exact_posterior(*meas.model.op, meas.model.noise.sigma_y, meas.y.unsqueeze(0));
        if (!exact) {
          if (spec.metrics_explicit) throw std::runtime_error("metric " + name + ": no exact posterior");
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
          check_value(name + "@posterior_mean", at_mean);
          values[name].push_back(mean);
          values[name + "@posterior_mean"].push_back(at_mean);
          if (metric->best_of_k()) {
            const double best = (metric->lower_is_better() ? per.min() : per.max()).item<double>();
            values[name + "@best_of_k"].push_back(best);
          }
          break;
        }
        case MetricLevel::PerMeasurement: {
          const double v = metric->compute(in);
          check_value(name, v);
          values[name].push_back(v);
          for (const auto& [suffix, t] : metric->extra_arrays(in))
            rec.arrays["metric_arrays/" + name + "/" + suffix + "/" + index_name(static_cast<int64_t>(m))] = t;
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
  for (const auto& [o, metric] : c.metrics) {
    const std::string& name = o.component();
    if (metric->level() == MetricLevel::PerSet && !ms.empty()) {
      for (const auto& [label, input] : {std::pair<std::string, const SetInput*>{name, &pooled},
                                         std::pair<std::string, const SetInput*>{name + "@posterior_mean", &means}}) {
        const SetValue v = metric->compute_set(*input);
        check_value(label, v.value);
        values[label].push_back(v.value);
        if (!std::isnan(v.spread)) rec.arrays["metric_spread/" + label] = as_tensor(std::vector<double>{v.spread});
        if (!v.warning.empty()) rec.attributes["warning:" + label] = v.warning;
      }
    }
    const char* level = metric->level() == MetricLevel::PerSample        ? "per_sample"
                        : metric->level() == MetricLevel::PerMeasurement ? "per_measurement"
                                                                         : "per_set";
    std::vector<std::string> labels{name};
    if (metric->level() != MetricLevel::PerMeasurement) labels.push_back(name + "@posterior_mean");
    if (metric->level() == MetricLevel::PerSample && metric->best_of_k()) labels.push_back(name + "@best_of_k");
    for (const auto& label : labels) {
      if (!values.count(label)) continue;
      rec.attributes["metric:" + label] = !std::isnan(metric->target())
                                              ? "target:" + format_value(metric->target())
                                              : (metric->lower_is_better() ? "lower_is_better" : "higher_is_better");
      rec.attributes["metric_level:" + label] = level;
      for (const auto& [k, v] : metric->provenance()) rec.attributes["metric_" + k + ":" + label] = v;
    }
  }
  for (const auto& [name, v] : values) rec.arrays["metrics/" + name] = as_tensor(v);
  if (!c.skipped_metrics.empty()) {
    std::string s;
    for (const auto& m : c.skipped_metrics) s += (s.empty() ? "" : "\n") + m;
    rec.attributes["metrics_skipped"] = s;
  }
}

void drop_metric_entries(CellRecord& rec) {
  for (auto it = rec.arrays.begin(); it != rec.arrays.end();) {
    const auto& k = it->first;
    const bool metric = k.rfind("metrics/", 0) == 0 || k.rfind("metric_arrays/", 0) == 0 || k.rfind("metric_spread/", 0) == 0;
    it = metric ? rec.arrays.erase(it) : std::next(it);
  }
  for (auto it = rec.attributes.begin(); it != rec.attributes.end();) {
    const auto& k = it->first;
    const bool metric = k.rfind("metric", 0) == 0 || k.rfind("warning:", 0) == 0;
    it = metric ? rec.attributes.erase(it) : std::next(it);
  }
}

}  // namespace

void validate_experiment(const Experiment& ex, PriorCache& priors) {
  for (const auto& spec : ex.cells) {
    try {
      auto c = build(spec, priors);
      const Shape shape = c.dataset->shape(*c.prior);
      c.sampler->num_chains(spec.samples_per_measurement);
      auto gen = make_generator(0);
      auto model = c.task->build(shape, gen);
      if (model.op->input_shape() != shape)
        throw ConfigError("task " + spec.task.component() + " expects input " + shape_string(model.op->input_shape()) +
                          " but the data have shape " + shape_string(shape));
      c.sampler->check(*c.prior, *model.op);
      const int64_t planned = c.sampler->planned_nfe(spec.samples_per_measurement, *c.prior);
      if (spec.nfe_budget > 0 && planned > spec.nfe_budget)
        throw ConfigError("nfe_budget=" + std::to_string(spec.nfe_budget) + " is below the " + std::to_string(planned) +
                          " network evaluations this sampler needs per measurement");
      if (spec.metrics_explicit) {
        auto x = c.dataset->ground_truth(0, *c.prior, gen).to(c.prior->dtype()).unsqueeze(0);
        for (const auto& [o, m] : c.metrics)
          if (m->needs_exact_posterior() && !c.prior->exact_posterior(*model.op, model.noise.sigma_y, model.op->forward(x)))
            throw ConfigError("metric " + o.component() + " needs an exact posterior, which prior " +
                              spec.prior.component() + " does not have for task " + spec.task.component());
      }
    } catch (const ConfigError& e) {
      throw ConfigError(ex.path + ": " + describe(spec) + ": " + e.what());
    }
  }
}

CellRecord run_cell(const CellSpec& spec, PriorCache& priors, const RunOptions& opts) {
  CellRecord rec;
  rec.key = spec.key();
  rec.attributes = provenance(opts);
  rec.attributes["config"] = spec.yaml();
  rec.attributes["canonical"] = spec.canonical();
  rec.attributes["status"] = "ok";
  rec.attributes["message"] = "";
  try {
    auto c = build(spec, priors);
    for (const auto& [k, v] : c.prior->provenance()) rec.attributes["prior:" + k] = v;
    const int64_t k_samples = spec.samples_per_measurement;
    const int64_t n_chains = c.sampler->num_chains(k_samples);
    rec.attributes["chains"] = std::to_string(n_chains);

    std::vector<Measurement> ms;
    std::vector<at::Tensor> xs, ys;
    std::vector<int64_t> wf, wfb, cf, cfb, diverged;
    std::vector<double> wsec, ssec;
    bool all_measurements_ok = true;
    for (int64_t m = 0; m < spec.measurements; ++m) {
      Measurement meas = make_measurement(spec, c, m);
      xs.push_back(meas.x_true);
      ys.push_back(meas.y);

      // Chain randomness: keyed on (cell, measurement, chain).
      std::vector<uint64_t> seeds;
      for (int64_t ch = 0; ch < n_chains; ++ch)
        seeds.push_back(derive_seed({spec.seed, hash_string(rec.key), static_cast<uint64_t>(m),
                                     static_cast<uint64_t>(Stream::Chain), static_cast<uint64_t>(ch)}));
      Problem problem(*c.prior, *meas.model.op, meas.model.noise, meas.y.unsqueeze(0));
      SamplerOutput out = c.sampler->run(problem, k_samples, seeds);

      wf.push_back(out.warmup_nfe.forward);
      wfb.push_back(out.warmup_nfe.forward_backward);
      cf.push_back(out.sampling_nfe.forward);
      cfb.push_back(out.sampling_nfe.forward_backward);
      wsec.push_back(out.warmup_seconds);
      ssec.push_back(out.sampling_seconds);
      int64_t ndiv = 0;
      for (auto d : out.diverged) ndiv += d;
      diverged.push_back(ndiv);
      for (const auto& [name, values] : out.trace)
        if (!values.empty()) rec.arrays["trace/" + name + "/" + index_name(m)] = as_tensor(values);
      if (spec.store_samples && out.samples.size(0) > 0)
        rec.arrays["samples/" + index_name(m)] = out.samples.to(at::kFloat);

      if (ndiv > 0 && rec.attributes["message"].empty()) rec.attributes["message"] = out.divergence_message;
      if (out.samples.size(0) == 0 || !at::isfinite(out.samples).all().item<bool>()) {
        all_measurements_ok = false;
        rec.attributes["status"] = "diverged";
        if (rec.attributes["message"].empty()) rec.attributes["message"] = "no finite samples";
        continue;
      }
      meas.samples = out.samples;
      ms.push_back(std::move(meas));
    }
    rec.arrays["x_true"] = at::stack(xs);
    rec.arrays["y"] = at::stack(ys);
    rec.arrays["nfe/warmup_forward"] = as_tensor(wf);
    rec.arrays["nfe/warmup_forward_backward"] = as_tensor(wfb);
    rec.arrays["nfe/chain_forward"] = as_tensor(cf);
    rec.arrays["nfe/chain_forward_backward"] = as_tensor(cfb);
    rec.arrays["time/warmup_seconds"] = as_tensor(wsec);
    rec.arrays["time/sampling_seconds"] = as_tensor(ssec);
    rec.arrays["chains/diverged"] = as_tensor(diverged);
    // A cell with a fully diverged measurement gets no metric arrays: never numbers that mean nothing.
    if (all_measurements_ok) score_cell(spec, c, ms, rec);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    rec.attributes["status"] = "failed";
    std::string msg = e.what();
    rec.attributes["message"] = msg.substr(0, msg.find('\n'));
    drop_metric_entries(rec);
  }
  return rec;
}

CellRecord rescore_cell(const CellRecord& stored, const std::vector<Options>* metrics, PriorCache& priors) {
  CellRecord rec = stored;
  if (!stored.has_attr("config")) throw ConfigError("cell " + stored.key + ": no stored configuration");
  CellSpec spec = parse_cell_yaml(stored.attr("config"));
  if (metrics) {
    spec.metrics = *metrics;
    spec.metrics_explicit = true;
  } else if (!spec.metrics_explicit) {
    spec.metrics.clear();  // the current default: every registered metric that applies
    for (const auto& [name, e] : MetricRegistry::instance().entries())
      spec.metrics.push_back(resolve_options(name, e.options, {}));
  }
  auto c = build(spec, priors);
  std::vector<Measurement> ms;
  for (int64_t m = 0; m < spec.measurements; ++m) {
    auto it = stored.arrays.find("samples/" + index_name(m));
    if (it == stored.arrays.end())
      throw ConfigError("cell " + stored.key + ": no stored samples for measurement " + std::to_string(m) +
                        " (run the experiment with store_samples: true)");
    Measurement meas = make_measurement(spec, c, m);
    // The stored ground truth and y are the ones the samples were drawn for: use them, and check that
    // the rebuilt measurement agrees (same operator randomness).
    const auto& xs = stored.arrays.at("x_true");
    const auto& ys = stored.arrays.at("y");
    if (!at::allclose(meas.x_true.to(at::kDouble), xs[m].to(at::kDouble), 1e-6, 1e-6) ||
        !at::allclose(meas.y.to(at::kDouble), ys[m].to(at::kDouble), 1e-6, 1e-6))
      throw std::runtime_error("cell " + stored.key + ": measurement " + std::to_string(m) +
                               " rebuilt from the stored configuration differs from the stored x_true / y");
    meas.x_true = xs[m].to(c.prior->dtype());
    meas.y = ys[m].to(c.prior->dtype());
    meas.samples = it->second.to(c.prior->dtype());
    ms.push_back(std::move(meas));
  }
  drop_metric_entries(rec);
  score_cell(spec, c, ms, rec);
  rec.attributes["rescored_by_git_revision"] = git_revision();
  return rec;
}

RunSummary run_experiment(const Experiment& ex, ResultStore& store, const RunOptions& opts) {
  PriorCache priors(opts.device);
  if (!opts.validated) validate_experiment(ex, priors);
  RunSummary sum;
  sum.total = static_cast<int>(ex.cells.size());
  const auto done = store.complete_keys();
  int index = 0;
  for (const auto& spec : ex.cells) {
    ++index;
    const std::string tag = "[" + std::to_string(index) + "/" + std::to_string(sum.total) + "] " + describe(spec);
    if (done.count(spec.key())) {
      ++sum.skipped;
      if (opts.log) opts.log(tag + ": already complete, skipped");
      continue;
    }
    Stopwatch clock;
    CellRecord rec = run_cell(spec, priors, opts);
    rec.attributes["cell_index"] = std::to_string(index - 1);  // position in the experiment, for reports
    store.write(rec);
    const auto& status = rec.attr("status");
    if (status == "ok") ++sum.ok;
    else if (status == "diverged") ++sum.diverged;
    else ++sum.failed;
    if (opts.log) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1f s", clock.seconds());
      std::string line = tag + ": " + status + " (" + secs + ")";
      if (status != "ok" && !rec.attr("message").empty()) line += ": " + rec.attr("message");
      opts.log(line);
    }
  }
  return sum;
}

}  // namespace psbench
