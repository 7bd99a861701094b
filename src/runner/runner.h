#pragma once
// The runner: the only place that wires dataset, task, prior, sampler, metrics and store. No
// task- or sampler-specific branches: everything comes from the registries.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "priors/prior.h"
#include "runner/experiment.h"
#include "store/result_store.h"

namespace psbench {

// Builds each distinct (prior config, seed) once. A non-empty `device` (psbench run --device) is given
// to every prior that has a `device` option, overriding the experiment file.
class PriorCache {
 public:
  explicit PriorCache(std::string device = "") : device_(std::move(device)) {}
  const Prior& get(const Options& prior, uint64_t seed);

 private:
  std::string device_;
  std::map<std::string, std::unique_ptr<Prior>> priors_;
};

struct RunOptions {
  int threads = 1;
  std::string device = "cpu";
  std::function<void(const std::string&)> log;  // progress lines; may be empty
  bool validated = false;                        // validate_experiment already ran
  const std::vector<size_t>* cells = nullptr;    // indices of the cells to run (select_cells); null: all
};

struct RunSummary {
  int total = 0, skipped = 0, ok = 0, diverged = 0, failed = 0;
};

const char* git_revision();

// psbench version, git revision, LibTorch version, threads, device, build type.
std::map<std::string, std::string> provenance(const RunOptions& opts);

// Checks every cell before any work: component construction, divisibility, shapes, NFE budget and
// metric availability. Throws ConfigError naming the file and the cell.
// Returns each cell's plan, in cell order.
struct CellPlan {
  int64_t planned_nfe = 0;  // network evaluations per measurement
  std::string budget_rule;  // the budget rule with its numbers (budget_mode: set; else empty)
};
std::vector<CellPlan> validate_experiment(const Experiment& ex, PriorCache& priors);
// "cell KEY (task ..., prior ..., sampler ...)", as logs and messages name a cell.
std::string describe(const CellSpec& s);

// Runs one cell; runtime failures and divergences are recorded in the returned record's status.
CellRecord run_cell(const CellSpec& spec, PriorCache& priors, const RunOptions& opts);

// Scores a stored cell's samples again without re-sampling (psbench evaluate): with `metrics` (explicit
// list) or else the cell's own explicit list, or the current default set. Needs samples/mNNNN arrays.
// Replaces every metric array and attribute of the record; other contents are kept.
CellRecord rescore_cell(const CellRecord& stored, const std::vector<Options>* metrics, PriorCache& priors);

// Runs every selected cell (opts.cells) not already complete in `store`, writing each cell atomically.
RunSummary run_experiment(const Experiment& ex, ResultStore& store, const RunOptions& opts);

}  // namespace psbench
