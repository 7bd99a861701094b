#pragma once
// The results schema in one place: every HDF5 group, dataset and attribute name of a stored cell, and
// the cell status. The runner, `report`, `evaluate` and metric aggregation use these names; the Python
// readers (tests/runner/read_results.py, tools/sampler_table.py) take theirs from
// tools/psbench_schema.py, which tests/schema_check.py compares with this header, constant by
// constant. Keep one constant a line in the form below: that test parses it.
//
// Layout (README "Results layout"): /cells/<key>/ with the arrays and attributes below; a cell is
// written under /cells/.partial-<key> and linked to its name when complete.
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace psbench::schema {

// File layout.
inline constexpr char kCellsGroup[] = "/cells";
inline constexpr char kPartialPrefix[] = ".partial-";
// Finished measurements of cells not complete yet: /measurements/<key>/mNNNN of "<results>.inprogress.h5"
// (ResultStore::write_measurement), a file beside the results that is removed when no cell needs it.
inline constexpr char kMeasurementsGroup[] = "/measurements";
// The layout version: every file psbench writes carries it as a file attribute, and readers refuse a file
// with another one (written by a psbench whose layout differs) with one line. Files written before the
// attribute existed have this layout and no attribute; they are read as this version.
inline constexpr char kResultsSchema[] = "results_schema";
inline constexpr char kResultsSchemaVersion[] = "psbench-results-1";
// File attributes (besides the provenance attributes below).
inline constexpr char kExperiment[] = "experiment";
inline constexpr char kExperimentFile[] = "experiment_file";
// Hash of every cell's configuration (runner/selection.h), the experiment's cell count, and "i/N" for a
// shard's file: `merge` combines only files with one experiment_hash.
inline constexpr char kExperimentHash[] = "experiment_hash";
inline constexpr char kExperimentCells[] = "experiment_cells";
inline constexpr char kShard[] = "shard";
inline constexpr char kMergedFrom[] = "merged_from";

// Cell arrays: ground truth and measurements [M, ...].
inline constexpr char kXTrue[] = "x_true";
inline constexpr char kY[] = "y";
// metrics/<label> [M] (per-set metrics: [1]); metric_arrays/<name>/<suffix>/mNNNN; metric_spread/<label> [1].
inline constexpr char kMetricsGroup[] = "metrics/";
inline constexpr char kMetricArraysGroup[] = "metric_arrays/";
inline constexpr char kMetricSpreadGroup[] = "metric_spread/";
// Network evaluations and wall time per measurement [M].
inline constexpr char kNfeGroup[] = "nfe/";
inline constexpr char kNfeWarmupForward[] = "nfe/warmup_forward";
inline constexpr char kNfeWarmupForwardBackward[] = "nfe/warmup_forward_backward";
inline constexpr char kNfeChainForward[] = "nfe/chain_forward";
inline constexpr char kNfeChainForwardBackward[] = "nfe/chain_forward_backward";
inline constexpr char kTimeGroup[] = "time/";
inline constexpr char kTimeWarmupSeconds[] = "time/warmup_seconds";
inline constexpr char kTimeSamplingSeconds[] = "time/sampling_seconds";
// What the cell cost, per cell [1]: wall time of scoring (metrics of all measurements and per-set metrics)
// and of the whole cell, and the peak resident memory of the process during the cell (absent where Linux
// cannot reset the high-water mark).
inline constexpr char kResourcesGroup[] = "resources/";
inline constexpr char kResourcesScoringSeconds[] = "resources/scoring_seconds";
inline constexpr char kResourcesCellSeconds[] = "resources/cell_seconds";
inline constexpr char kResourcesPeakRssBytes[] = "resources/peak_rss_bytes";
// On --device cuda: the peak of bytes allocated by LibTorch's CUDA caching allocator during the cell, summed
// over devices (the allocator's cache on top of it is not counted).
inline constexpr char kResourcesPeakDeviceBytes[] = "resources/peak_device_bytes";
// Diverged chains per measurement [M].
inline constexpr char kChainsDiverged[] = "chains/diverged";
// Which measurements the metrics are over [S], increasing: written only when some measurement was left with
// no finite samples (every chain diverged); its metrics/<label> [S] arrays and metric_arrays/.../mNNNN then
// follow these indices, and the cell's status is diverged. Absent: metrics/<label> has all M measurements.
inline constexpr char kScoredMeasurements[] = "scored_measurements";
// trace/<name>/mNNNN [steps]; samples/mNNNN [K, ...] (store_samples: true).
inline constexpr char kTraceGroup[] = "trace/";
inline constexpr char kSamplesGroup[] = "samples/";

// Cell attributes.
inline constexpr char kConfig[] = "config";
inline constexpr char kCanonical[] = "canonical";
inline constexpr char kStatus[] = "status";
inline constexpr char kMessage[] = "message";
inline constexpr char kChains[] = "chains";
// Every cell: its sampler's planned NFE per measurement. budget_mode: set: the sampler's rule with its numbers,
// and the sampler options it ran with (canonical form).
inline constexpr char kPlannedNfe[] = "planned_nfe";
inline constexpr char kBudgetRule[] = "budget_rule";
inline constexpr char kBudgetSampler[] = "budget_sampler";
inline constexpr char kCellIndex[] = "cell_index";
inline constexpr char kMetricsSkipped[] = "metrics_skipped";
inline constexpr char kRescoredByGitRevision[] = "rescored_by_git_revision";
// Provenance attributes (of every cell and of the file).
inline constexpr char kPsbenchVersion[] = "psbench_version";
inline constexpr char kGitRevision[] = "git_revision";
inline constexpr char kLibtorchVersion[] = "libtorch_version";
inline constexpr char kThreads[] = "threads";
inline constexpr char kInteropThreads[] = "interop_threads";
inline constexpr char kDevice[] = "device";
inline constexpr char kBuildType[] = "build_type";
inline constexpr char kMalloc[] = "malloc";
inline constexpr char kBlas[] = "blas";
// Attribute name prefixes, followed by a name: prior:<key>, metric:<label> (direction),
// metric_level:<label>, metric_<key>:<label> (a metric's provenance, e.g. metric_network:<label>),
// warning:<label>.
inline constexpr char kPriorPrefix[] = "prior:";
inline constexpr char kMetricDirectionPrefix[] = "metric:";
inline constexpr char kMetricLevelPrefix[] = "metric_level:";
inline constexpr char kMetricProvenancePrefix[] = "metric_";
inline constexpr char kMetricNetworkPrefix[] = "metric_network:";
inline constexpr char kMetricWeightsPrefix[] = "metric_weights:";
inline constexpr char kMetricWeightsSha256Prefix[] = "metric_weights_sha256:";
inline constexpr char kWarningPrefix[] = "warning:";

// Metric labels besides the plain name: <name>@posterior_mean, <name>@best_of_k.
inline constexpr char kAtPosteriorMean[] = "@posterior_mean";
inline constexpr char kAtBestOfK[] = "@best_of_k";

// Values of metric:<label> and metric_level:<label>.
inline constexpr char kLowerIsBetter[] = "lower_is_better";
inline constexpr char kHigherIsBetter[] = "higher_is_better";
inline constexpr char kTargetPrefix[] = "target:";
inline constexpr char kLevelPerSample[] = "per_sample";
inline constexpr char kLevelPerMeasurement[] = "per_measurement";
inline constexpr char kLevelPerSet[] = "per_set";

// Values of the status attribute.
inline constexpr char kStatusOk[] = "ok";
inline constexpr char kStatusDiverged[] = "diverged";
inline constexpr char kStatusFailed[] = "failed";

// ok: metrics present; diverged: a measurement had no finite samples (no metrics); failed: a runtime
// error (no metrics, message set).
enum class CellStatus { Ok, Diverged, Failed };

inline const char* status_name(CellStatus s) {
  switch (s) {
    case CellStatus::Ok: return kStatusOk;
    case CellStatus::Diverged: return kStatusDiverged;
    case CellStatus::Failed: return kStatusFailed;
  }
  return kStatusFailed;
}

// A stored status attribute; anything else is not a psbench results file of this schema.
inline CellStatus parse_status(const std::string& s) {
  if (s == kStatusOk) return CellStatus::Ok;
  if (s == kStatusDiverged) return CellStatus::Diverged;
  if (s == kStatusFailed) return CellStatus::Failed;
  throw std::runtime_error("unknown cell status '" + s + "' (known: ok, diverged, failed)");
}

// Per-measurement dataset names inside trace/<name>/, samples/ and metric_arrays/...: "m0000".
inline std::string measurement_name(int64_t m) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "m%04lld", static_cast<long long>(m));
  return buf;
}

}  // namespace psbench::schema
