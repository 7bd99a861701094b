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

struct Components {
  const Prior* prior = nullptr;
  std::unique_ptr<Dataset> dataset;
  std::unique_ptr<Task> task;
  std::unique_ptr<Sampler> sampler;
  std::vector<std::pair<Options, std::unique_ptr<Metric>>> metrics;
};

Components build(const CellSpec& spec, PriorCache& priors) {
  Components c;
  c.prior = &priors.get(spec.prior, spec.seed);
  c.dataset = DatasetRegistry::instance().get(spec.dataset.component(), "dataset").make(spec.dataset);
  c.task = TaskRegistry::instance().get(spec.task.component(), "task").make(spec.task);
  c.sampler = SamplerRegistry::instance().get(spec.sampler.component(), "sampler").make(spec.sampler);
  for (const auto& m : spec.metrics)
    c.metrics.emplace_back(m, MetricRegistry::instance().get(m.component(), "metric").make(m));
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
    const Shape shape = c.dataset->shape(*c.prior);
    const int64_t k_samples = spec.samples_per_measurement;
    const int64_t n_chains = c.sampler->num_chains(k_samples);
    rec.attributes["chains"] = std::to_string(n_chains);
    const auto dtype = c.prior->dtype();

    std::vector<at::Tensor> xs, ys;
    std::map<std::string, std::vector<double>> metric_values;
    std::vector<int64_t> wf, wfb, cf, cfb, diverged;
    std::vector<double> wsec, ssec;
    bool all_measurements_ok = true;
    for (int64_t m = 0; m < spec.measurements; ++m) {
      // The measurement depends on (seed, task, dataset[, prior], m) only, never on the sampler.
      const uint64_t mseed = spec.measurement_seed(m, c.dataset->uses_prior());
      auto gt_gen = make_generator(derive_seed({mseed, static_cast<uint64_t>(Stream::GroundTruth)}));
      auto op_gen = make_generator(derive_seed({mseed, static_cast<uint64_t>(Stream::Operator)}));
      auto noise_gen = make_generator(derive_seed({mseed, static_cast<uint64_t>(Stream::Noise)}));
      at::Tensor x_true = c.dataset->ground_truth(m, *c.prior, gt_gen).to(dtype);
      auto model = c.task->build(shape, op_gen);
      at::Tensor y = model.noise.sample(model.op->forward(x_true.unsqueeze(0)), noise_gen);
      xs.push_back(x_true);
      ys.push_back(y[0]);

      // Chain randomness: keyed on (cell, measurement, chain).
      std::vector<uint64_t> seeds;
      for (int64_t ch = 0; ch < n_chains; ++ch)
        seeds.push_back(derive_seed({spec.seed, hash_string(rec.key), static_cast<uint64_t>(m),
                                     static_cast<uint64_t>(Stream::Chain), static_cast<uint64_t>(ch)}));
      Problem problem(*c.prior, *model.op, model.noise, y);
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
      std::unique_ptr<ExactPosterior> exact;
      MetricInput in;
      in.x_true = x_true;
      in.y = y[0];
      in.samples = out.samples;
      in.measurement_seed = mseed;
      for (const auto& [o, metric] : c.metrics) {
        if (metric->needs_exact_posterior()) {
          if (!exact) exact = c.prior->exact_posterior(*model.op, model.noise.sigma_y, y);
          if (!exact) {
            if (spec.metrics_explicit) throw std::runtime_error("metric " + o.component() + ": no exact posterior");
            continue;  // defaulted metric that does not apply to this prior
          }
          in.exact = exact.get();
        }
        const double v = metric->compute(in);
        if (!std::isfinite(v))
          throw std::runtime_error("metric " + o.component() + " is not finite (" + std::to_string(v) + ")");
        metric_values[o.component()].push_back(v);
        rec.attributes["metric:" + o.component()] = metric->lower_is_better() ? "lower_is_better" : "higher_is_better";
      }
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
    if (all_measurements_ok)
      for (const auto& [name, values] : metric_values) rec.arrays["metrics/" + name] = as_tensor(values);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    rec.attributes["status"] = "failed";
    std::string msg = e.what();
    rec.attributes["message"] = msg.substr(0, msg.find('\n'));
    for (auto it = rec.arrays.begin(); it != rec.arrays.end();)
      it = it->first.rfind("metrics/", 0) == 0 ? rec.arrays.erase(it) : std::next(it);
  }
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
