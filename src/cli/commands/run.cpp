// psbench run: runs (or resumes) an experiment into an HDF5 results file.
#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
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

int cmd_run(const std::vector<std::string>& args) {
  po::options_description desc("psbench run EXPERIMENT.yaml [options]");
  std::string experiment, out, device;
  std::vector<std::string> vars;
  std::string shard;
  CellSelection selection;
  int threads = 1;
  desc.add_options()("help,h", "show this help")(
      "experiment", po::value(&experiment), "experiment YAML file")(
      "out,o", po::value(&out), "results HDF5 file (default results/<experiment name>.h5); complete cells "
                                "already in it are skipped, so an interrupted run resumes")(
      "threads,t", po::value(&threads)->default_value(1), "intra-op threads (recorded with results)")(
      "device", po::value(&device)->default_value("cpu"), "cpu or cuda")(
      "fresh", "delete the results file first instead of resuming")(
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
  if (threads < 1) throw UsageError("run: --threads must be >= 1, got " + std::to_string(threads));
  if (device != "cpu" && device != "cuda") throw UsageError("run: --device must be cpu or cuda, got '" + device + "'");
  if (device == "cuda" && !at::hasCUDA()) throw UsageError("run: --device cuda, but this LibTorch build has no CUDA device");
  at::set_num_threads(threads);
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
  opts.threads = threads;
  opts.device = device;
  opts.log = [](const std::string& line) { std::cerr << line << std::endl; };
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
    for (size_t i : selected)
      std::cout << "[" << i + 1 << "/" << ex.cells.size() << "] " << describe(ex.cells[i]) << ": "
                << ex.cells[i].measurements << " measurements x " << ex.cells[i].samples_per_measurement
                << " samples, planned NFE per measurement " << plans[i].planned_nfe
                << (plans[i].budget_rule.empty() ? std::string()
                                                 : " (" + ex.cells[i].describe_budget() + ": " + plans[i].budget_rule + ")")
                << "\n";
    std::cout << experiment << ": " << ex.cells.size() << " cells valid, " << selected.size()
              << " selected (dry run: nothing ran, " << out << " not touched)" << std::endl;
    return 0;
  }
  if (auto parent = std::filesystem::path(out).parent_path(); !parent.empty()) std::filesystem::create_directories(parent);
  WriterLock lock(out);  // before --fresh deletes anything: another run may be writing this file
  if (vm.count("fresh")) std::filesystem::remove(out);
  std::cerr << "psbench: " << selected.size() << " of " << ex.cells.size() << " cells from " << experiment << " -> "
            << out << std::endl;
  Hdf5Store store(out, "a", file_attrs);
  auto sum = run_experiment(ex, store, opts);
  std::cerr << "psbench: " << sum.ok << " ok, " << sum.diverged << " diverged, " << sum.failed << " failed, "
            << sum.skipped << " already complete; results in " << out << std::endl;
  return sum.failed > 0 ? 1 : 0;
}

CommandRegistrar reg_run({"run", "run EXPERIMENT.yaml [--out FILE] [--threads N] [--fresh] [--dry-run] [--var NAME=VALUE ...] "
                          "[--only FIELD=VALUE ...] [--shard i/N]",
                          "run (or resume) an experiment; results go to HDF5", cmd_run});

}  // namespace
}  // namespace psbench
