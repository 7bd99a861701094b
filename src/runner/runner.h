#pragma once
// The runner: the only place that wires dataset, task, prior, sampler, metrics and store. No
// task- or sampler-specific branches: everything comes from the registries.
#include <atomic>
#include <functional>
#include <stdexcept>
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

// Where a run stands, after each measurement and each cell (psbench run prints it as progress).
struct RunProgress {
  int cells_done = 0, cells_total = 0;  // cells of this run finished (skipped ones count), of the selection
  const CellSpec* cell = nullptr;       // the cell running, or the one just finished
  int64_t measurement = 0;              // measurements of `cell` finished
  int64_t measurements_left = 0;        // in this run, after this one: of `cell` and of cells not started
  int64_t measurements_run = 0;         // finished in this run (not skipped), over every cell
  int64_t nfe_run = 0;                  // network evaluations counted in this run
  double seconds = 0;                   // since the run started
  bool cell_finished = false;
};

// --threads auto: intra-op threads for a cell whose network calls take `batch` chains at a time. On the
// 2-core reference machine two threads make a batch-1 call of the shipped networks 2.7-3.5x slower and
// batch >= 4 calls 1.5-1.8x faster (docs/PERFORMANCE.md, 2), so one thread below 4 chains per call and
// every core from 4 on.
inline constexpr int64_t kAutoThreadsMinBatch = 4;
inline int threads_for_batch(int64_t batch, int cores) { return batch >= kAutoThreadsMinBatch ? cores : 1; }

struct RunOptions {
  int threads = 1;       // intra-op threads; 0: auto, per cell (threads_for_batch with auto_cores)
  int auto_cores = 1;    // with threads 0: the cores a batch of >= kAutoThreadsMinBatch chains gets
  std::string device = "cpu";
  std::function<void(const std::string&)> log;        // one line per cell; may be empty
  std::function<void(const RunProgress&)> progress;   // after each measurement and cell; may be empty
  bool validated = false;                              // validate_experiment already ran
  const std::vector<size_t>* cells = nullptr;          // indices of the cells to run (select_cells); null: all
  // Set (e.g. by a SIGINT/SIGTERM handler) to stop: the running cell is abandoned at the next measurement
  // boundary and not written (it runs again on resume); complete cells stay.
  const std::atomic<bool>* stop = nullptr;
};

struct RunSummary {
  int total = 0, skipped = 0, ok = 0, diverged = 0, failed = 0;
  bool interrupted = false;  // opts.stop ended the run before every cell ran
};

// Thrown by run_cell when RunOptions::stop is set between measurements.
struct RunInterrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
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
// `after_measurement(m, nfe, restored)` (may be empty) is called after measurement m with its network
// evaluations; throws RunInterrupted when opts.stop is set at a measurement boundary. With a
// `progress_store`, each finished measurement is stored there (ResultStore::write_measurement) and the ones
// an earlier, interrupted run stored are taken from it instead of sampled again (restored = true), when
// they come from the same configuration, psbench version and git revision.
CellRecord run_cell(const CellSpec& spec, PriorCache& priors, const RunOptions& opts,
                    const std::function<void(int64_t, int64_t, bool)>& after_measurement = {},
                    ResultStore* progress_store = nullptr);

// Scores a stored cell's samples again without re-sampling (psbench evaluate): with `metrics` (explicit
// list) or else the cell's own explicit list, or the current default set. Needs samples/mNNNN arrays.
// Replaces every metric array and attribute of the record; other contents are kept.
CellRecord rescore_cell(const CellRecord& stored, const std::vector<Options>* metrics, PriorCache& priors);

// Runs every selected cell (opts.cells) not already complete in `store`, writing each cell atomically.
RunSummary run_experiment(const Experiment& ex, ResultStore& store, const RunOptions& opts);

}  // namespace psbench
