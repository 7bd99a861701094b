#include "runner/experiment.h"
#include "runner/variables.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <tuple>
#include <sstream>

#include "core/errors.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "metrics/metric.h"
#include "operators/operator.h"
#include "priors/prior.h"
#include "samplers/sampler.h"

namespace psbench {

namespace {

struct Ctx {
  std::string file;
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const {
    throw ConfigError(where(file, key, msg));
  }
};

template <class R>
const std::vector<OptionSpec>& specs_of(const std::string& name, const std::string& kind, const Ctx& ctx,
                                        const std::string& key) {
  try {
    return R::instance().get(name, kind).options;
  } catch (const ConfigError& e) {
    ctx.fail(key + ".name", e.what());
  }
}

// Expands one component entry ({name: X, opt: v | [v1, v2]}) into its swept resolved Options.
std::vector<Options> expand_component(const YAML::Node& node, const std::vector<OptionSpec>& specs,
                                      const std::string& name, const Ctx& ctx, const std::string& key,
                                      bool allow_sweep = true) {
  std::vector<std::map<std::string, OptionValue>> combos{{}};
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const auto k = kv.first.as<std::string>();
    if (k == "name") continue;
    const std::string okey = key + "." + k;
    auto it = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.key == k; });
    if (it == specs.end()) {
      std::string list;
      for (const auto& s : specs) list += (list.empty() ? "" : ", ") + s.key;
      ctx.fail(okey, "unknown option for '" + name + "'" + (list.empty() ? " (it has no options)" : " (known: " + list + ")"));
    }
    std::vector<OptionValue> values;
    if (kv.second.IsSequence()) {
      if (!allow_sweep) ctx.fail(okey, "cannot be swept (give a single value)");
      if (kv.second.size() == 0) ctx.fail(okey, "empty list");
      for (size_t i = 0; i < kv.second.size(); ++i)
        values.push_back(parse_option(*it, kv.second[i], ctx.file + ": " + okey + "[" + std::to_string(i) + "]"));
    } else {
      values.push_back(parse_option(*it, kv.second, ctx.file + ": " + okey));
    }
    std::vector<std::map<std::string, OptionValue>> next;
    for (const auto& c : combos)
      for (const auto& v : values) {
        auto m = c;
        m[k] = v;
        next.push_back(std::move(m));
      }
    combos = std::move(next);
  }
  std::vector<Options> out;
  for (auto& c : combos) out.push_back(resolve_options(name, specs, std::move(c)));
  return out;
}

template <class R>
std::vector<Options> expand_section(const YAML::Node& list, const std::string& section, const std::string& kind,
                                    const Ctx& ctx, bool allow_sweep = true) {
  if (!list.IsSequence() || list.size() == 0)
    ctx.fail(section, "must be a non-empty list of {name: ..., options...}");
  std::vector<Options> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string key = section + "[" + std::to_string(i) + "]";
    const auto& entry = list[i];
    if (entry.IsScalar()) {  // shorthand: just the name
      const auto name = entry.Scalar();
      auto specs = specs_of<R>(name, kind, ctx, key);
      out.push_back(resolve_options(name, specs, {}));
      continue;
    }
    if (!entry.IsMap()) ctx.fail(key, "must be a map with a 'name' key");
    if (!entry["name"] || !entry["name"].IsScalar()) ctx.fail(key, "missing 'name'");
    const auto name = entry["name"].Scalar();
    const auto& specs = specs_of<R>(name, kind, ctx, key);
    auto expanded = expand_component(entry, specs, name, ctx, key, allow_sweep);
    out.insert(out.end(), expanded.begin(), expanded.end());
  }
  return out;
}

int64_t parse_int(const YAML::Node& n, const std::string& key, const Ctx& ctx, int64_t min) {
  auto spec = OptionSpec::integer(key, 0, "").at_least(static_cast<double>(min));
  return std::get<int64_t>(parse_option(spec, n, ctx.file + ": " + key));
}

std::vector<int64_t> parse_int_list(const YAML::Node& n, const std::string& key, const Ctx& ctx, int64_t min) {
  std::vector<int64_t> out;
  if (n.IsSequence()) {
    if (n.size() == 0) ctx.fail(key, "empty list");
    for (size_t i = 0; i < n.size(); ++i) out.push_back(parse_int(n[i], key + "[" + std::to_string(i) + "]", ctx, min));
  } else {
    out.push_back(parse_int(n, key, ctx, min));
  }
  return out;
}

const std::set<std::string> kTopKeys = {"name", "seed", "measurements", "samples_per_measurement", "nfe_budget",
                                        "budget_mode", "nfe_budget_per",
                                        "store_samples", "tasks", "datasets", "priors", "samplers", "metrics",
                                        "grids", "description"};
const std::set<std::string> kGridKeys = {"tasks", "datasets", "priors", "samplers"};

}  // namespace

namespace {

Experiment parse_experiment_document(const std::string& text, const std::string& path) {
  Ctx ctx{path};
  YAML::Node loaded;
  try {
    loaded = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw yaml_error(path, "YAML syntax error", e);
  }
  // Const access only: operator[] on a non-const node would insert the keys it looks up.
  const YAML::Node root = loaded;
  if (!root.IsMap()) ctx.fail("", "the experiment must be a YAML map");
  check_yaml_document(root, path);
  for (const auto& kv : root) {
    auto k = kv.first.as<std::string>();
    if (!kTopKeys.count(k)) {
      std::string list;
      for (const auto& t : kTopKeys) list += (list.empty() ? "" : ", ") + t;
      ctx.fail(k, "unknown key (known: " + list + ")");
    }
  }
  Experiment ex;
  ex.path = path;
  if (!root["name"] || !root["name"].IsScalar() || root["name"].Scalar().empty()) ctx.fail("name", "missing experiment name");
  ex.name = root["name"].Scalar();
  if (!root["seed"]) ctx.fail("seed", "missing (an integer >= 0)");
  auto seeds = parse_int_list(root["seed"], "seed", ctx, 0);
  const int64_t measurements = root["measurements"] ? parse_int(root["measurements"], "measurements", ctx, 1) : 1;
  auto sample_counts = root["samples_per_measurement"]
                           ? parse_int_list(root["samples_per_measurement"], "samples_per_measurement", ctx, 1)
                           : std::vector<int64_t>{1};
  auto budgets = root["nfe_budget"] ? parse_int_list(root["nfe_budget"], "nfe_budget", ctx, 0) : std::vector<int64_t>{0};
  BudgetMode budget_mode = BudgetMode::Cap;
  if (root["budget_mode"]) {
    const auto v = std::get<std::string>(parse_option(OptionSpec::choice("budget_mode", "cap", {"cap", "set"}, ""),
                                                      root["budget_mode"], path + ": budget_mode"));
    budget_mode = v == "set" ? BudgetMode::Set : BudgetMode::Cap;
  }
  bool budget_per_sample = false;
  if (root["nfe_budget_per"])
    budget_per_sample = std::get<std::string>(parse_option(OptionSpec::choice("nfe_budget_per", "measurement",
                                                                              {"measurement", "sample"}, ""),
                                                           root["nfe_budget_per"], path + ": nfe_budget_per")) == "sample";
  if (budget_mode == BudgetMode::Set) {
    if (!root["nfe_budget"]) ctx.fail("nfe_budget", "missing: budget_mode: set needs a budget (an integer >= 1 or a list)");
    for (size_t i = 0; i < budgets.size(); ++i)
      if (budgets[i] < 1)
        ctx.fail(budgets.size() > 1 ? "nfe_budget[" + std::to_string(i) + "]" : std::string("nfe_budget"),
                 "0 is no budget, and budget_mode: set needs one (an integer >= 1)");
  }
  bool store_samples = false;
  if (root["store_samples"])
    store_samples = std::get<bool>(parse_option(OptionSpec::boolean("store_samples", false, ""), root["store_samples"],
                                                path + ": store_samples"));

  std::vector<Options> metrics;
  bool metrics_explicit = false;
  if (root["metrics"]) {
    metrics = expand_section<MetricRegistry>(root["metrics"], "metrics", "metric", ctx, /*allow_sweep=*/false);
    metrics_explicit = true;
    std::set<std::string> names;
    for (size_t i = 0; i < metrics.size(); ++i)
      if (!names.insert(metrics[i].component()).second)
        ctx.fail("metrics[" + std::to_string(i) + "]", "metric '" + metrics[i].component() + "' listed twice");
  } else {
    for (const auto& [name, e] : MetricRegistry::instance().entries()) metrics.push_back(resolve_options(name, e.options, {}));
  }

  // Grids: either the top level itself, or each entry of `grids` (which may override sections).
  std::vector<YAML::Node> grids;
  std::vector<std::string> grid_prefix;
  if (root["grids"]) {
    if (!root["grids"].IsSequence() || root["grids"].size() == 0) ctx.fail("grids", "must be a non-empty list");
    for (size_t i = 0; i < root["grids"].size(); ++i) {
      const YAML::Node g = root["grids"][i];
      const std::string gk = "grids[" + std::to_string(i) + "]";
      if (!g.IsMap()) ctx.fail(gk, "must be a map of tasks/datasets/priors/samplers");
      for (const auto& kv : g)
        if (!kGridKeys.count(kv.first.as<std::string>()))
          ctx.fail(gk + "." + kv.first.as<std::string>(), "unknown key (known: datasets, priors, samplers, tasks)");
      grids.push_back(g);
      grid_prefix.push_back(gk + ".");
    }
  } else {
    grids.push_back(root);
    grid_prefix.push_back("");
  }

  std::set<std::string> keys;
  for (size_t gi = 0; gi < grids.size(); ++gi) {
    const YAML::Node grid = grids[gi];
    // {node, key as written, present?}
    auto section = [&](const char* name) -> std::tuple<YAML::Node, std::string, bool> {
      if (grid[name]) return {grid[name], grid_prefix[gi] + name, true};
      if (root[name]) return {root[name], name, true};
      return {YAML::Node(), name, false};
    };
    auto [tn, tk, has_t] = section("tasks");
    auto [dn, dk, has_d] = section("datasets");
    auto [pn, pk, has_p] = section("priors");
    auto [sn, sk, has_s] = section("samplers");
    if (!has_t) ctx.fail(tk, "missing: list the tasks");
    if (!has_p) ctx.fail(pk, "missing: list the priors");
    if (!has_s) ctx.fail(sk, "missing: list the samplers");
    auto tasks = expand_section<TaskRegistry>(tn, tk, "task", ctx);
    auto datasets = has_d ? expand_section<DatasetRegistry>(dn, dk, "dataset", ctx)
                       : std::vector<Options>{resolve_options("prior", {}, {})};
    auto priors = expand_section<PriorRegistry>(pn, pk, "prior", ctx);
    auto samplers = expand_section<SamplerRegistry>(sn, sk, "sampler", ctx);
    for (auto seed : seeds)
      for (auto k : sample_counts)
        for (auto budget : budgets)
          for (const auto& t : tasks)
            for (const auto& d : datasets)
              for (const auto& p : priors)
                for (const auto& s : samplers) {
                  CellSpec c;
                  c.experiment = ex.name;
                  c.seed = static_cast<uint64_t>(seed);
                  c.measurements = measurements;
                  c.samples_per_measurement = k;
                  c.nfe_budget = budget;
                  c.budget_mode = budget_mode;
                  c.budget_per_sample = budget_per_sample;
                  c.store_samples = store_samples;
                  c.task = t; c.dataset = d; c.prior = p; c.sampler = s;
                  c.metrics = metrics;
                  c.metrics_explicit = metrics_explicit;
                  if (keys.insert(c.key()).second) ex.cells.push_back(std::move(c));
                }
  }
  return ex;
}

}  // namespace

Experiment parse_experiment_text(const std::string& text, const std::string& path) {
  try {
    return parse_experiment_document(text, path);
  } catch (const YAML::Exception& e) {
    throw yaml_error(path, "", e);
  }
}

Experiment load_experiment(const std::string& path, const std::map<std::string, std::string>& vars) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open experiment file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_experiment_text(expand_variables(ss.str(), path, vars), path);
}

std::string CellSpec::describe_budget() const {
  return "nfe_budget=" + std::to_string(nfe_budget) + (budget_per_sample ? " per sample" : " per measurement");
}

std::string CellSpec::budget_canonical() const {
  // Only when not the defaults, so that the keys of files without these keys stay as they were.
  return std::string(budget_mode == BudgetMode::Set ? ";budget_mode=set" : "") +
         (budget_per_sample ? ";nfe_budget_per=sample" : "");
}

std::string CellSpec::canonical() const {
  std::string s = "seed=" + std::to_string(seed) + ";measurements=" + std::to_string(measurements) +
                  ";samples_per_measurement=" + std::to_string(samples_per_measurement) +
                  ";nfe_budget=" + std::to_string(nfe_budget) + budget_canonical() + ";task=" + task.canonical() +
                  ";dataset=" + dataset.canonical() + ";prior=" + prior.canonical() + ";sampler=" + sampler.canonical() +
                  ";metrics=";
  for (const auto& m : metrics) s += m.canonical();
  return s;
}

std::string CellSpec::key() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash_string(canonical())));
  return buf;
}

uint64_t CellSpec::measurement_seed(int64_t index, bool dataset_uses_prior) const {
  std::string m = "task=" + task.canonical() + ";dataset=" + dataset.canonical();
  if (dataset_uses_prior) m += ";prior=" + prior.canonical();
  return derive_seed({seed, hash_string(m), static_cast<uint64_t>(index)});
}

namespace {
void emit_options(YAML::Emitter& e, const Options& o) {
  e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << o.component();
  for (const auto& [k, v] : o.values()) e << YAML::Key << k << YAML::Value << format_value(v);
  e << YAML::EndMap;
}
}  // namespace

std::string CellSpec::yaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "experiment" << YAML::Value << experiment;
  e << YAML::Key << "seed" << YAML::Value << seed;
  e << YAML::Key << "measurements" << YAML::Value << measurements;
  e << YAML::Key << "samples_per_measurement" << YAML::Value << samples_per_measurement;
  e << YAML::Key << "nfe_budget" << YAML::Value << nfe_budget;
  if (budget_mode == BudgetMode::Set) e << YAML::Key << "budget_mode" << YAML::Value << "set";
  if (budget_per_sample) e << YAML::Key << "nfe_budget_per" << YAML::Value << "sample";
  e << YAML::Key << "store_samples" << YAML::Value << store_samples;
  e << YAML::Key << "metrics_explicit" << YAML::Value << metrics_explicit;
  e << YAML::Key << "task" << YAML::Value; emit_options(e, task);
  e << YAML::Key << "dataset" << YAML::Value; emit_options(e, dataset);
  e << YAML::Key << "prior" << YAML::Value; emit_options(e, prior);
  e << YAML::Key << "sampler" << YAML::Value; emit_options(e, sampler);
  e << YAML::Key << "metrics" << YAML::Value << YAML::BeginSeq;
  for (const auto& m : metrics) emit_options(e, m);
  e << YAML::EndSeq << YAML::EndMap;
  return e.c_str();
}

namespace {

template <class R>
Options parse_stored_component(const YAML::Node& node, const std::string& kind, const std::string& context) {
  if (!node || !node.IsMap() || !node["name"]) throw ConfigError(context + ": missing or malformed " + kind);
  const auto name = node["name"].as<std::string>();
  const auto& specs = (kind == "dataset" && name == "prior") ? std::vector<OptionSpec>{}
                                                              : R::instance().get(name, kind).options;
  std::map<std::string, OptionValue> given;
  for (const auto& kv : node) {
    const auto k = kv.first.as<std::string>();
    if (k == "name") continue;
    auto it = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.key == k; });
    if (it == specs.end()) throw ConfigError(context + ": " + kind + " " + name + " no longer has option '" + k + "'");
    given[k] = parse_option(*it, kv.second, context + ": " + kind + "." + k);
  }
  return resolve_options(name, specs, std::move(given));
}

}  // namespace

CellSpec parse_cell_yaml(const std::string& yaml_text) {
  const std::string ctx = "stored cell configuration";
  YAML::Node root;
  try { root = YAML::Load(yaml_text); } catch (const YAML::Exception& e) {
    throw ConfigError(ctx + ": not valid YAML (" + e.msg + ")");
  }
  if (!root.IsMap()) throw ConfigError(ctx + ": not a map");
  CellSpec c;
  try {
    c.experiment = root["experiment"].as<std::string>();
    c.seed = root["seed"].as<uint64_t>();
    c.measurements = root["measurements"].as<int64_t>();
    c.samples_per_measurement = root["samples_per_measurement"].as<int64_t>();
    c.nfe_budget = root["nfe_budget"].as<int64_t>();
    c.budget_mode = root["budget_mode"] && root["budget_mode"].as<std::string>() == "set" ? BudgetMode::Set : BudgetMode::Cap;
    c.budget_per_sample = root["nfe_budget_per"] && root["nfe_budget_per"].as<std::string>() == "sample";
    c.store_samples = root["store_samples"].as<bool>();
    c.metrics_explicit = root["metrics_explicit"] ? root["metrics_explicit"].as<bool>() : true;
  } catch (const YAML::Exception& e) {
    throw ConfigError(ctx + ": " + e.msg);
  }
  c.task = parse_stored_component<TaskRegistry>(root["task"], "task", ctx);
  c.dataset = parse_stored_component<DatasetRegistry>(root["dataset"], "dataset", ctx);
  c.prior = parse_stored_component<PriorRegistry>(root["prior"], "prior", ctx);
  c.sampler = parse_stored_component<SamplerRegistry>(root["sampler"], "sampler", ctx);
  if (root["metrics"] && root["metrics"].IsSequence())
    for (const auto& m : root["metrics"])
      c.metrics.push_back(parse_stored_component<MetricRegistry>(m, "metric", ctx));
  return c;
}

std::vector<Options> parse_metric_list(const std::string& yaml_text, const std::string& context) {
  YAML::Node node;
  try { node = YAML::Load(yaml_text); } catch (const YAML::Exception& e) {
    throw ConfigError(context + ": not valid YAML (" + e.msg + ")");
  }
  return expand_section<MetricRegistry>(node, "metrics", "metric", Ctx{context}, /*allow_sweep=*/false);
}

std::vector<std::pair<std::string, std::string>> flatten_config(const std::string& yaml_text) {
  std::vector<std::pair<std::string, std::string>> out;
  auto root = YAML::Load(yaml_text);
  for (const auto& kv : root) {
    const auto k = kv.first.as<std::string>();
    if (kv.second.IsScalar()) out.emplace_back(k, kv.second.Scalar());
    else if (kv.second.IsMap())
      for (const auto& inner : kv.second) out.emplace_back(k + "." + inner.first.as<std::string>(), inner.second.Scalar());
  }
  return out;
}

}  // namespace psbench
