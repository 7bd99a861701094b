// psbench run: runs (or resumes) an experiment into an HDF5 results file.
#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "core/threads.h"
#include "runner/experiment.h"
#include "runner/runner.h"
#include "runner/selection.h"
#include "runner/variables.h"
#include "store/merge.h"
#include "store/result_store.h"
#include "store/schema.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

// Exit code of a run stopped by SIGINT/SIGTERM (Slurm's preemption signal): the results file is valid and
// `run` again resumes it.
constexpr int kExitInterrupted = 3;

std::atomic<bool> stop_requested{false};

// First SIGINT/SIGTERM: stop at the next measurement boundary (the running cell is not written). A second
// one: the default action, at once.
extern "C" void on_stop_signal(int sig) {
  if (stop_requested.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

std::string clock_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

std::string seconds_text(double seconds) {
  if (seconds >= 60) return clock_text(seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  return buf;
}

// Progress on stderr: rewritten in place on a terminal; on a pipe or file one line per finished cell (the
// run's log lines) and at most one progress line a minute in between.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool terminal) : terminal_(terminal) {}
  void operator()(const RunProgress& p) {
    if (!terminal_ && !(p.seconds - last_line_ >= 60 && !p.cell_finished)) return;
    const double per_measurement = p.measurements_run > 0 ? p.seconds / p.measurements_run : 0;
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.0f", p.seconds > 0 ? p.nfe_run / p.seconds : 0.0);
    std::string line = "cells " + std::to_string(p.cells_done) + "/" + std::to_string(p.cells_total);
    if (p.cell && !p.cell_finished)
      line += ", " + p.cell->sampler.component() + " on " + p.cell->task.component() + " measurement " +
              std::to_string(p.measurement) + "/" + std::to_string(p.cell->measurements);
    line += ", elapsed " + clock_text(p.seconds) + ", ETA " +
            (p.measurements_run > 0 ? clock_text(per_measurement * p.measurements_left) : std::string("?")) +
            " (at this run's " + seconds_text(per_measurement) + " per measurement), " + rate + " NFE/s";
    if (terminal_) {
      std::cerr << "\r\033[K" << line << std::flush;
    } else {
      std::cerr << line << std::endl;
      last_line_ = p.seconds;
    }
  }
  // A log line printed over the live line (terminal) or as it is.
  void log(const std::string& line) const { std::cerr << (terminal_ ? "\r\033[K" : "") << line << std::endl; }

 private:
  bool terminal_;
  double last_line_ = 0;
};

int cmd_run(const std::vector<std::string>& args) {
  po::options_description desc("psbench run EXPERIMENT.yaml [options]");
  std::string experiment, out, device;
  std::vector<std::string> vars;
  std::string shard;
  CellSelection selection;
  std::string threads_arg = "1";
  desc.add_options()("help,h", "show this help")(
      "experiment", po::value(&experiment), "experiment YAML file")(
      "out,o", po::value(&out), "results HDF5 file (default results/<experiment name>.h5); complete cells "
                                "already in it are skipped, so an interrupted run resumes")(
      "threads,t", po::value(&threads_arg)->default_value("1"),
      "intra-op threads (recorded with results), or auto: per cell, 1 thread when its network calls take fewer "
      "than 4 chains at a time, else every core (docs/PERFORMANCE.md, 2)")(
      "device", po::value(&device)->default_value("cpu"), "cpu or cuda")(
      "fresh", "delete the results file first instead of resuming")(
      "quiet,q", "no progress and no per-cell lines on stderr (errors and the exit code only)")(
      "var", po::value<std::vector<std::string>>(&vars)->composing(),
      "NAME=VALUE: the value of ${NAME} in the experiment file (repeatable; else the environment variable NAME)")(
      "only", po::value<std::vector<std::string>>(&selection.only)->composing(),
      "FIELD=VALUE: run only cells with this value (repeatable: one FIELD repeated = any of its values, different "
      "FIELDs = all). FIELD: task, dataset, prior, sampler, SECTION.OPTION (e.g. sampler.step_size), seed, "
      "measurements, samples_per_measurement, nfe_budget, key")(
      "shard", po::value(&shard), "i/N: run only shard i of N (cell j of the experiment is in shard j mod N + 1); "
                                  "default file results/<experiment name>.shard-i-of-N.h5; `psbench merge` combines them")(
      "dry-run", "build every cell's components (priors, tasks, samplers, metrics) and list the selected cells with "
                 "their planned NFE; run nothing and touch no file");
  po::positional_options_description pos;
  pos.add("experiment", 1);
  auto vm = parse_command_line(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (experiment.empty()) throw UsageError("run: missing EXPERIMENT.yaml");
  const bool auto_threads = threads_arg == "auto";
  int threads = 0;
  if (!auto_threads) {
    size_t used = 0;
    try { threads = std::stoi(threads_arg, &used); } catch (const std::exception&) { used = 0; }
    if (used != threads_arg.size() || threads < 1)
      throw UsageError("run: --threads must be an integer >= 1 or auto, got '" + threads_arg + "'");
  }
  if (device != "cpu" && device != "cuda") throw UsageError("run: --device must be cpu or cuda, got '" + device + "'");
  if (device == "cuda" && !at::hasCUDA()) throw UsageError("run: --device cuda, but this LibTorch build has no CUDA device");
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  set_compute_threads(auto_threads ? 1 : threads);
  Variables variables;
  for (const auto& v : vars) variables.insert(parse_variable_assignment(v));
  auto ex = load_experiment(experiment, variables);
  if (!shard.empty()) parse_shard(shard, selection);
  const auto selected = select_cells(ex, selection);
  if (out.empty())
    out = "results/" + ex.name +
          (selection.num_shards > 1 ? ".shard-" + std::to_string(selection.shard) + "-of-" + std::to_string(selection.num_shards) : "") +
          ".h5";
  RunOptions opts;
  opts.threads = threads;  // 0: auto
  opts.auto_cores = cores;
  opts.device = device;
  const bool quiet = vm.count("quiet") > 0;
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  ProgressPrinter printer(terminal);
  if (!quiet) {
    opts.log = [&printer](const std::string& line) { printer.log(line); };
    opts.progress = [&printer](const RunProgress& p) { printer(p); };
  }
  auto file_attrs = provenance(opts);
  file_attrs[schema::kExperiment] = ex.name;
  file_attrs[schema::kExperimentFile] = experiment;
  file_attrs[schema::kExperimentHash] = experiment_hash(ex);
  file_attrs[schema::kExperimentCells] = std::to_string(ex.cells.size());
  if (selection.num_shards > 1) file_attrs[schema::kShard] = shard;
  PriorCache validation_cache(device);
  const auto plans = validate_experiment(ex, validation_cache);  // bad input fails before the results file is touched
  opts.validated = true;
  opts.cells = &selected;
  if (vm.count("dry-run")) {
    const auto swept = swept_values(ex);
    for (size_t i : selected) {
      std::string values;
      for (const auto& v : swept[i]) values += (values.empty() ? "" : " ") + v;
      std::cout << "[" << i + 1 << "/" << ex.cells.size() << "] " << describe(ex.cells[i])
                << (values.empty() ? "" : " [" + values + "]") << ": "
                << ex.cells[i].measurements << " measurements x " << ex.cells[i].samples_per_measurement
                << " samples, planned NFE per measurement " << plans[i].planned_nfe
                << (plans[i].budget_rule.empty() ? std::string()
                                                 : " (" + ex.cells[i].describe_budget() + ": " + plans[i].budget_rule + ")")
                << "\n";
    }
    std::cout << experiment << ": " << ex.cells.size() << " cells valid, " << selected.size()
              << " selected (dry run: nothing ran, " << out << " not touched)" << std::endl;
    return 0;
  }
  if (auto parent = std::filesystem::path(out).parent_path(); !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw ConfigError(out + ": cannot create its directory " + parent.string() + " (" + ec.message() + ")");
  }
  WriterLock lock(out);  // before --fresh deletes anything: another run may be writing this file
  if (vm.count("fresh")) std::filesystem::remove(out);
  Hdf5Store store(out, "a", file_attrs);  // refuses a file of another results schema before anything is said
  if (!quiet)
    std::cerr << "psbench: " << selected.size() << " of " << ex.cells.size() << " cells from " << experiment << " -> "
              << out << std::endl;
  stop_requested = false;
  opts.stop = &stop_requested;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  auto sum = run_experiment(ex, store, opts);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (!quiet || sum.interrupted)
    std::cerr << (terminal && !quiet ? "\r\033[K" : "") << "psbench: " << sum.ok << " ok, " << sum.diverged << " diverged, " << sum.failed
              << " failed, " << sum.skipped << " already complete"
              << (sum.interrupted ? ", interrupted (" + std::to_string(sum.total - sum.ok - sum.diverged - sum.failed - sum.skipped) +
                                        " not run; run the same command again to resume)"
                                  : std::string())
              << "; results in " << out << std::endl;
  if (sum.interrupted) return kExitInterrupted;
  return sum.failed > 0 ? 1 : 0;
}

CommandRegistrar reg_run({"run", "run EXPERIMENT.yaml [--out FILE] [--threads N|auto] [--fresh] [--dry-run] [--var NAME=VALUE ...] "
                          "[--only FIELD=VALUE ...] [--shard i/N]",
                          "run (or resume) an experiment; results go to HDF5", cmd_run});

}  // namespace
}  // namespace psbench
