#pragma once
// Experiment files: YAML grids of tasks x datasets x priors x samplers; every option given as a list is
// swept and the cartesian product gives the cells.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/options.h"

namespace psbench {

// cap: nfe_budget only refuses a cell whose sampler plans more; set: the sampler fits its schedule to it
// (Sampler::fit_budget).
enum class BudgetMode { Cap, Set };

struct CellSpec {
  std::string experiment;
  uint64_t seed = 0;
  int64_t measurements = 1;
  int64_t samples_per_measurement = 1;
  int64_t nfe_budget = 0;  // 0 = no limit
  BudgetMode budget_mode = BudgetMode::Cap;
  bool budget_per_sample = false;  // nfe_budget_per: sample (B per posterior sample) or measurement (default)
  bool store_samples = false;
  Options task, dataset, prior, sampler;
  std::vector<Options> metrics;
  bool metrics_explicit = false;  // user-chosen metrics must all be computable

  // The budget in network evaluations per measurement (x samples_per_measurement when per sample); 0 = none.
  int64_t budget_per_measurement() const { return budget_per_sample ? nfe_budget * samples_per_measurement : nfe_budget; }
  // "nfe_budget=25 per sample" as messages name it.
  std::string describe_budget() const;
  // Canonical description of everything that determines the results; the basis of key().
  std::string canonical() const;
  std::string key() const;  // 16 hex digits
  std::string budget_canonical() const;  // the budget mode's part of canonical() (empty at the defaults)
  // Seed of measurement `index`: depends on (seed, task, dataset, prior if x* comes from it) only.
  uint64_t measurement_seed(int64_t index, bool dataset_uses_prior) const;
  std::string yaml() const;  // resolved configuration, stored with results
};

struct Experiment {
  std::string name;
  std::string path;
  std::vector<CellSpec> cells;
};

// Throws ConfigError naming the file, the key and the offending value.
// ${NAME} references are expanded first (runner/variables.h): `vars`, then the environment.
Experiment load_experiment(const std::string& path, const std::map<std::string, std::string>& vars = {});
Experiment parse_experiment_text(const std::string& text, const std::string& path);

// The CellSpec of a stored cell's resolved configuration (CellSpec::yaml), against the current registries
// (psbench evaluate). Keys the current components no longer declare are an error; new keys get defaults.
CellSpec parse_cell_yaml(const std::string& yaml_text);
// Resolved options of metrics named in a YAML list (the `metrics:` section of an experiment file).
std::vector<Options> parse_metric_list(const std::string& yaml_text, const std::string& context);

// Flattened "section.key" -> value text of a stored cell config (for reports).
std::vector<std::pair<std::string, std::string>> flatten_config(const std::string& yaml_text);

}  // namespace psbench
