#include "runner/runner.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include "core/allocator.h"
#include "core/errors.h"
#include "core/resources.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "metrics/aggregate.h"
#include "metrics/metric.h"
#include "operators/operator.h"
#include "samplers/sampler.h"
#include "store/schema.h"

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
  return {{schema::kPsbenchVersion, PSBENCH_VERSION},
          {schema::kGitRevision, git_revision()},
          {schema::kLibtorchVersion, TORCH_VERSION},
          {schema::kThreads, opts.threads > 0 ? std::to_string(opts.threads)
                                              : "auto (1 below " + std::to_string(kAutoThreadsMinBatch) +
                                                    " chains per network call, else " + std::to_string(opts.auto_cores) + ")"},
          {schema::kInteropThreads, std::to_string(at::get_num_interop_threads())},
          {schema::kDevice, opts.device},
          {schema::kBuildType, PSBENCH_BUILD_TYPE},
          {schema::kMalloc, malloc_settings()},
          {schema::kBlas, blas_settings()}};
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
  Options sampler_options;  // as run: the cell's, or with budget_mode: set the schedule its rule fitted
  std::string budget_rule;  // budget_mode: set
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
  const auto& sampler_entry = SamplerRegistry::instance().get(spec.sampler.component(), "sampler");
  c.sampler = sampler_entry.make(spec.sampler);
  c.sampler_options = spec.sampler;
  if (spec.budget_mode == BudgetMode::Set) {
    // The sampler's own rule (its file) sets its schedule; the fitted options pass the same validation.
    try {
      auto fit = c.sampler->fit_budget(spec.budget_per_measurement(), spec.samples_per_measurement, *c.prior);
      auto values = spec.sampler.values();
      for (auto& [k, v] : fit.set) values[k] = v;
      c.sampler_options = resolve_options(spec.sampler.component(), sampler_entry.options, std::move(values));
      c.sampler = sampler_entry.make(c.sampler_options);
      c.budget_rule = fit.rule;
    } catch (const ConfigError& e) {
      throw ConfigError(spec.describe_budget() + " (budget_mode: set): sampler " + spec.sampler.component() + ": " +
                        e.what());
    }
  }
  MetricContext ctx;
  ctx.data_shape = c.dataset->shape(*c.prior);
  ctx.has_labels = c.dataset->has_labels();
  ctx.samples = spec.samples_per_measurement;
  ctx.chains = c.sampler->num_chains(spec.samples_per_measurement);
  ctx.draws_per_chain = ctx.chains > 0 ? spec.samples_per_measurement / ctx.chains : 0;
  ctx.draws_form_chains = c.sampler->draws_form_chains();
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
    if (auto why = metric->sampler_unsupported(ctx); !why.empty()) {
      // Chain diagnostics of a one-draw-per-chain sampler: recorded, and never an error, so that one
      // experiment can ask for them across samplers.
      c.skipped_metrics.push_back(m.component() + ": " + why);
      continue;
    }
    c.metrics.push_back({m, std::move(metric)});
  }
  return c;
}


at::Tensor as_tensor(const std::vector<double>& v) {
  return at::tensor(v, at::TensorOptions().dtype(at::kDouble));
}
at::Tensor as_tensor(const std::vector<int64_t>& v) { return at::tensor(v, at::TensorOptions().dtype(at::kLong)); }

std::string index_name(int64_t m) { return schema::measurement_name(m); }

// A finished measurement as ResultStore::write_measurement keeps it: everything the cell needs of it later
// (its samples in their own dtype, so that scoring a resumed cell is bit for bit the uninterrupted one).
// The measurement itself (x*, operator, y) is rebuilt from its seed; y is kept to check the rebuild.
CellRecord measurement_record(const CellRecord& cell, const at::Tensor& y, const SamplerOutput& out) {
  CellRecord part;
  for (const char* k : {schema::kCanonical, schema::kGitRevision, schema::kPsbenchVersion})
    part.attributes[k] = cell.attributes.at(k);
  part.attributes[schema::kMessage] = out.divergence_message;
  part.arrays["y"] = y;
  part.arrays["samples"] = out.samples;
  part.arrays["diverged"] = at::tensor(std::vector<int64_t>(out.diverged.begin(), out.diverged.end()), at::kLong);
  part.arrays["nfe"] = as_tensor(std::vector<int64_t>{out.warmup_nfe.forward, out.warmup_nfe.forward_backward,
                                                      out.sampling_nfe.forward, out.sampling_nfe.forward_backward});
  part.arrays["seconds"] = as_tensor(std::vector<double>{out.warmup_seconds, out.sampling_seconds});
  for (const auto& [name, values] : out.trace) part.arrays[std::string(schema::kTraceGroup) + name] = as_tensor(values);
  return part;
}

// The sampler output a stored measurement holds, if it belongs to this cell as this build runs it (same
// configuration, psbench version and git revision, and the same rebuilt y); else nothing (it is re-run).
std::optional<SamplerOutput> stored_output(const CellRecord& part, const CellRecord& cell, const at::Tensor& y) {
  for (const char* k : {schema::kCanonical, schema::kGitRevision, schema::kPsbenchVersion})
    if (!part.has_attr(k) || part.attr(k) != cell.attributes.at(k)) return std::nullopt;
  for (const char* a : {"y", "samples", "diverged", "nfe", "seconds"})
    if (!part.arrays.count(a)) return std::nullopt;
  const auto& stored_y = part.arrays.at("y");
  if (stored_y.scalar_type() != y.scalar_type() || !stored_y.sizes().equals(y.sizes()) || !stored_y.equal(y))
    return std::nullopt;
  SamplerOutput out;
  out.samples = part.arrays.at("samples");
  const auto d = part.arrays.at("diverged");
  for (int64_t i = 0; i < d.numel(); ++i) out.diverged.push_back(static_cast<uint8_t>(d[i].item<int64_t>()));
  const auto nfe = part.arrays.at("nfe");
  out.warmup_nfe = {nfe[0].item<int64_t>(), nfe[1].item<int64_t>()};
  out.sampling_nfe = {nfe[2].item<int64_t>(), nfe[3].item<int64_t>()};
  const auto sec = part.arrays.at("seconds");
  out.warmup_seconds = sec[0].item<double>();
  out.sampling_seconds = sec[1].item<double>();
  out.divergence_message = part.has_attr(schema::kMessage) ? part.attr(schema::kMessage) : "";
  const std::string trace_prefix = schema::kTraceGroup;
  for (const auto& [name, t] : part.arrays)
    if (name.rfind(trace_prefix, 0) == 0) {
      auto v = t.to(at::kDouble).contiguous();
      out.trace[name.substr(trace_prefix.size())] = std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
    }
  return out;
}

// One measurement as the metrics see it.
struct Measurement {
  at::Tensor x_true, y, samples;  // y without the batch dimension
  MeasurementModel model;
  uint64_t seed = 0;
  int64_t label = -1;
  int64_t chains = 0;  // live chains behind `samples`
  int64_t index = 0;   // in the cell
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
  out.index = m;
  return out;
}

// The metrics' aggregation and its stored names live with the metrics (metrics/aggregate.h).
void score_cell(const CellSpec& spec, const Components& c, const std::vector<Measurement>& ms, CellRecord& rec) {
  std::vector<NamedMetric> metrics;
  for (const auto& [o, metric] : c.metrics) metrics.push_back({o.component(), metric.get()});
  std::vector<ScoredMeasurement> scored;
  for (const auto& meas : ms)
    scored.push_back({meas.x_true, meas.y, meas.samples, meas.model.op.get(), meas.model.noise.sigma_y, meas.seed,
                      meas.label, meas.chains, meas.index});
  aggregate_metrics(metrics, *c.prior, spec.metrics_explicit, scored, c.skipped_metrics, rec);
  // Measurements whose chains all diverged have nothing to score: the metrics are over the others, and
  // which ones is stored beside them.
  if (static_cast<int64_t>(ms.size()) < spec.measurements) {
    std::vector<int64_t> idx;
    for (const auto& meas : ms) idx.push_back(meas.index);
    rec.arrays[schema::kScoredMeasurements] = as_tensor(idx);
  }
}

}  // namespace

std::string describe(const CellSpec& s) {
  return "cell " + s.key() + " (task " + s.task.component() + ", prior " + s.prior.component() + ", sampler " +
         s.sampler.component() + ")";
}

std::vector<CellPlan> validate_experiment(const Experiment& ex, PriorCache& priors) {
  std::vector<CellPlan> plans;
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
      plans.push_back({planned, c.budget_rule});
      if (spec.nfe_budget > 0 && planned > spec.budget_per_measurement())
        throw ConfigError("nfe_budget=" + std::to_string(spec.nfe_budget) +
                          (spec.budget_per_sample ? " per sample (" + std::to_string(spec.budget_per_measurement()) +
                                                        " per measurement)"
                                                  : std::string()) +
                          " is below the " + std::to_string(planned) +
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
  return plans;
}

CellRecord run_cell(const CellSpec& spec, PriorCache& priors, const RunOptions& opts,
                    const std::function<void(int64_t, int64_t, bool)>& after_measurement, ResultStore* progress_store) {
  const bool peak_per_cell = reset_peak_rss();
  const bool on_device = opts.device == "cuda";
  if (on_device) reset_peak_device_memory();
  Stopwatch cell_clock;
  double scoring_seconds = 0;
  CellRecord rec;
  rec.key = spec.key();
  rec.attributes = provenance(opts);
  rec.attributes[schema::kConfig] = spec.yaml();
  rec.attributes[schema::kCanonical] = spec.canonical();
  rec.attributes[schema::kStatus] = schema::status_name(schema::CellStatus::Ok);
  rec.attributes[schema::kMessage] = "";
  try {
    auto c = build(spec, priors);
    for (const auto& [k, v] : c.prior->provenance()) rec.attributes["prior:" + k] = v;
    const int64_t k_samples = spec.samples_per_measurement;
    const int64_t n_chains = c.sampler->num_chains(k_samples);
    rec.attributes[schema::kChains] = std::to_string(n_chains);
    if (opts.threads == 0) {
      const int threads = threads_for_batch(c.sampler->chains_per_batch(k_samples), opts.auto_cores);
      set_compute_threads(threads);
      rec.attributes[schema::kThreads] = std::to_string(threads);
    }
    rec.attributes[schema::kPlannedNfe] = std::to_string(c.sampler->planned_nfe(k_samples, *c.prior));
    if (spec.budget_mode == BudgetMode::Set) {
      rec.attributes[schema::kBudgetRule] = c.budget_rule;
      rec.attributes[schema::kBudgetSampler] = c.sampler_options.canonical();
    }

    std::vector<Measurement> ms;
    std::vector<at::Tensor> xs, ys;
    std::vector<int64_t> wf, wfb, cf, cfb, diverged;
    std::vector<double> wsec, ssec;
    int64_t lost = 0;  // measurements without finite samples
    const auto stored = progress_store ? progress_store->read_measurements(rec.key) : std::map<int64_t, CellRecord>{};
    for (int64_t m = 0; m < spec.measurements; ++m) {
      if (opts.stop && opts.stop->load()) throw RunInterrupted("interrupted");
      Measurement meas = make_measurement(spec, c, m);
      xs.push_back(meas.x_true);
      ys.push_back(meas.y);

      // Chain randomness: keyed on (cell, measurement, chain).
      std::vector<uint64_t> seeds;
      for (int64_t ch = 0; ch < n_chains; ++ch)
        seeds.push_back(derive_seed({spec.seed, hash_string(rec.key), static_cast<uint64_t>(m),
                                     static_cast<uint64_t>(Stream::Chain), static_cast<uint64_t>(ch)}));
      std::optional<SamplerOutput> restored;
      if (auto it = stored.find(m); it != stored.end()) restored = stored_output(it->second, rec, meas.y);
      SamplerOutput out;
      if (restored) {
        out = std::move(*restored);
      } else {
        Problem problem(*c.prior, *meas.model.op, meas.model.noise, meas.y.unsqueeze(0));
        out = c.sampler->run(problem, k_samples, seeds);
        if (progress_store) progress_store->write_measurement(rec.key, m, measurement_record(rec, meas.y, out));
      }

      wf.push_back(out.warmup_nfe.forward);
      wfb.push_back(out.warmup_nfe.forward_backward);
      cf.push_back(out.sampling_nfe.forward);
      cfb.push_back(out.sampling_nfe.forward_backward);
      wsec.push_back(out.warmup_seconds);
      ssec.push_back(out.sampling_seconds);
      int64_t ndiv = 0;
      for (auto d : out.diverged) ndiv += d;
      diverged.push_back(ndiv);
      if (after_measurement) after_measurement(m, out.warmup_nfe.total() + out.sampling_nfe.total(), restored.has_value());
      for (const auto& [name, values] : out.trace)
        if (!values.empty()) rec.arrays[schema::kTraceGroup + name + "/" + index_name(m)] = as_tensor(values);
      if (spec.store_samples && out.samples.size(0) > 0)
        rec.arrays[schema::kSamplesGroup + index_name(m)] = out.samples.to(at::kFloat);

      if (ndiv > 0 && rec.attributes[schema::kMessage].empty()) rec.attributes[schema::kMessage] = out.divergence_message;
      if (out.samples.size(0) == 0 || !at::isfinite(out.samples).all().item<bool>()) {
        ++lost;
        if (rec.attributes[schema::kMessage].empty()) rec.attributes[schema::kMessage] = "no finite samples";
        continue;
      }
      meas.samples = out.samples;
      meas.chains = n_chains - ndiv;
      ms.push_back(std::move(meas));
    }
    rec.arrays[schema::kXTrue] = at::stack(xs);
    rec.arrays[schema::kY] = at::stack(ys);
    rec.arrays[schema::kNfeWarmupForward] = as_tensor(wf);
    rec.arrays[schema::kNfeWarmupForwardBackward] = as_tensor(wfb);
    rec.arrays[schema::kNfeChainForward] = as_tensor(cf);
    rec.arrays[schema::kNfeChainForwardBackward] = as_tensor(cfb);
    rec.arrays[schema::kTimeWarmupSeconds] = as_tensor(wsec);
    rec.arrays[schema::kTimeSamplingSeconds] = as_tensor(ssec);
    rec.arrays[schema::kChainsDiverged] = as_tensor(diverged);
    // A measurement left without samples makes the cell diverged; its metrics are over the measurements
    // that have samples (scored_measurements says which), never numbers for the lost ones.
    if (lost > 0) {
      rec.attributes[schema::kStatus] = schema::status_name(schema::CellStatus::Diverged);
      rec.attributes[schema::kMessage] = std::to_string(lost) + " of " + std::to_string(spec.measurements) +
                                         " measurements have no samples (" + rec.attributes[schema::kMessage] + ")";
    }
    if (!ms.empty()) {
      Stopwatch scoring;
      score_cell(spec, c, ms, rec);
      scoring_seconds = scoring.seconds();
    }
  } catch (const ConfigError&) {
    throw;
  } catch (const RunInterrupted&) {
    throw;
  } catch (const std::exception& e) {
    rec.attributes[schema::kStatus] = schema::status_name(schema::CellStatus::Failed);
    std::string msg = e.what();
    rec.attributes[schema::kMessage] = msg.substr(0, msg.find('\n'));
    drop_metric_entries(rec);
  }
  rec.arrays[schema::kResourcesScoringSeconds] = as_tensor(std::vector<double>{scoring_seconds});
  rec.arrays[schema::kResourcesCellSeconds] = as_tensor(std::vector<double>{cell_clock.seconds()});
  if (peak_per_cell) rec.arrays[schema::kResourcesPeakRssBytes] = as_tensor(std::vector<int64_t>{peak_rss_bytes()});
  if (const int64_t device_peak = on_device ? peak_device_memory_bytes() : -1; device_peak >= 0)
    rec.arrays[schema::kResourcesPeakDeviceBytes] = as_tensor(std::vector<int64_t>{device_peak});
  return rec;
}

CellRecord rescore_cell(const CellRecord& stored, const std::vector<Options>* metrics, PriorCache& priors) {
  CellRecord rec = stored;
  if (!stored.has_attr(schema::kConfig)) throw ConfigError("cell " + stored.key + ": no stored configuration");
  CellSpec spec = parse_cell_yaml(stored.attr(schema::kConfig));
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
  const auto dv = stored.arrays.find(schema::kChainsDiverged);
  const int64_t stored_chains = stored.has_attr(schema::kChains) ? std::stoll(stored.attr(schema::kChains)) : -1;
  for (int64_t m = 0; m < spec.measurements; ++m) {
    auto it = stored.arrays.find(schema::kSamplesGroup + index_name(m));
    const bool all_chains_lost =
        dv != stored.arrays.end() && m < dv->second.numel() && dv->second[m].item<int64_t>() == stored_chains;
    if (it == stored.arrays.end() && all_chains_lost) continue;  // nothing to score, as when the cell ran
    if (it == stored.arrays.end())
      throw ConfigError("cell " + stored.key + ": no stored samples for measurement " + std::to_string(m) +
                        " (run the experiment with store_samples: true)");
    Measurement meas = make_measurement(spec, c, m);
    // The stored ground truth and y are the ones the samples were drawn for: use them, and check that
    // the rebuilt measurement agrees (same operator randomness).
    const auto& xs = stored.arrays.at(schema::kXTrue);
    const auto& ys = stored.arrays.at(schema::kY);
    if (!at::allclose(meas.x_true.to(at::kDouble), xs[m].to(at::kDouble), 1e-6, 1e-6) ||
        !at::allclose(meas.y.to(at::kDouble), ys[m].to(at::kDouble), 1e-6, 1e-6))
      throw std::runtime_error("cell " + stored.key + ": measurement " + std::to_string(m) +
                               " rebuilt from the stored configuration differs from the stored x_true / y");
    meas.x_true = xs[m].to(c.prior->dtype());
    meas.y = ys[m].to(c.prior->dtype());
    meas.samples = it->second.to(c.prior->dtype());
    // Live chains as when the cell ran: the stored chain count less that measurement's diverged chains.
    if (stored_chains >= 0 && dv != stored.arrays.end() && m < dv->second.numel())
      meas.chains = stored_chains - dv->second[m].item<int64_t>();
    ms.push_back(std::move(meas));
  }
  drop_metric_entries(rec);
  if (!ms.empty()) score_cell(spec, c, ms, rec);
  rec.attributes[schema::kRescoredByGitRevision] = git_revision();
  return rec;
}

RunSummary run_experiment(const Experiment& ex, ResultStore& store, const RunOptions& opts) {
  PriorCache priors(opts.device);
  if (!opts.validated) validate_experiment(ex, priors);
  std::vector<size_t> all;
  if (!opts.cells)
    for (size_t j = 0; j < ex.cells.size(); ++j) all.push_back(j);
  const auto& selected = opts.cells ? *opts.cells : all;
  RunSummary sum;
  sum.total = static_cast<int>(selected.size());
  const auto done = store.complete_keys();
  RunProgress prog;
  prog.cells_total = sum.total;
  for (size_t j : selected)
    if (!done.count(ex.cells.at(j).key())) prog.measurements_left += ex.cells.at(j).measurements;
  Stopwatch run_clock;
  int done_here = 0;
  for (size_t j : selected) {
    const auto& spec = ex.cells.at(j);
    ++done_here;
    const std::string tag = "[" + std::to_string(done_here) + "/" + std::to_string(sum.total) + "] " + describe(spec);
    if (done.count(spec.key())) {
      ++sum.skipped;
      ++prog.cells_done;
      if (opts.log) opts.log(tag + ": already complete, skipped");
      continue;
    }
    if (opts.stop && opts.stop->load()) {
      sum.interrupted = true;
      break;
    }
    prog.cell = &spec;
    prog.measurement = 0;
    prog.cell_finished = false;
    const int64_t left_before = prog.measurements_left;
    int64_t restored_here = 0;
    auto after_measurement = [&](int64_t m, int64_t nfe, bool restored) {
      prog.measurement = m + 1;
      prog.measurements_left = left_before - (m + 1);
      if (restored) {  // finished by an earlier run: not this run's work, nor its speed
        ++restored_here;
        return;
      }
      ++prog.measurements_run;
      prog.nfe_run += nfe;
      prog.seconds = run_clock.seconds();
      if (opts.progress) opts.progress(prog);
    };
    Stopwatch clock;
    CellRecord rec;
    try {
      rec = run_cell(spec, priors, opts, after_measurement, &store);
    } catch (const RunInterrupted&) {
      sum.interrupted = true;  // the cell is not written: it runs again on resume
      if (opts.log) opts.log(tag + ": interrupted, not written");
      break;
    }
    rec.attributes[schema::kCellIndex] = std::to_string(j);  // position in the experiment, for reports
    store.write(rec);
    store.drop_measurements(rec.key);
    prog.measurements_left = left_before - spec.measurements;  // also when a measurement threw
    ++prog.cells_done;
    prog.cell_finished = true;
    prog.seconds = run_clock.seconds();
    if (opts.progress) opts.progress(prog);
    const auto& status = rec.attr(schema::kStatus);
    switch (schema::parse_status(status)) {
      case schema::CellStatus::Ok: ++sum.ok; break;
      case schema::CellStatus::Diverged: ++sum.diverged; break;
      case schema::CellStatus::Failed: ++sum.failed; break;
    }
    if (opts.log) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1f s", clock.seconds());
      std::string line = tag + ": " + status + " (" + secs +
                         (restored_here > 0 ? ", " + std::to_string(restored_here) + " measurements resumed from an earlier run" : "") +
                         ")";
      if (status != schema::kStatusOk && !rec.attr(schema::kMessage).empty()) line += ": " + rec.attr(schema::kMessage);
      opts.log(line);
    }
  }
  return sum;
}

}  // namespace psbench
