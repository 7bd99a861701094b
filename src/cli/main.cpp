// psbench command-line interface. Exit codes: 0 success, 2 bad input, 1 runtime failure.
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <boost/program_options.hpp>

#include <cstdio>
#include <filesystem>
#include <torch/version.h>
#include <iostream>

#include "core/errors.h"
#include "data/dataset.h"
#include "metrics/metric.h"
#include "operators/operator.h"
#include "priors/prior.h"
#include "runner/experiment.h"
#include "runner/report.h"
#include "runner/runner.h"
#include "samplers/sampler.h"

namespace po = boost::program_options;
using namespace psbench;

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kUsage =
    "psbench — benchmarks posterior samplers with generative priors for inverse problems\n\n"
    "usage: psbench <command> [options]\n\n"
    "commands:\n"
    "  run EXPERIMENT.yaml [--out FILE] [--threads N] [--fresh]   run (or resume) an experiment\n"
    "  report RESULTS.h5                                          markdown table of stored results\n"
    "  list                                                       registered tasks, datasets, priors, samplers, metrics\n\n"
    "  psbench <command> --help   options of one command\n"
    "  psbench --version\n";

po::variables_map parse(const std::vector<std::string>& args, po::options_description& desc,
                        po::positional_options_description* pos) {
  po::variables_map vm;
  try {
    auto parser = po::command_line_parser(args).options(desc);
    if (pos) parser.positional(*pos);
    po::store(parser.run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return vm;
}

int cmd_run(const std::vector<std::string>& args) {
  po::options_description desc("psbench run EXPERIMENT.yaml [options]");
  std::string experiment, out, device;
  int threads = 1;
  desc.add_options()("help,h", "show this help")(
      "experiment", po::value(&experiment), "experiment YAML file")(
      "out,o", po::value(&out), "results HDF5 file (default results/<experiment name>.h5); complete cells "
                                "already in it are skipped, so an interrupted run resumes")(
      "threads,t", po::value(&threads)->default_value(1), "intra-op threads (recorded with results)")(
      "device", po::value(&device)->default_value("cpu"), "cpu or cuda")(
      "fresh", "delete the results file first instead of resuming");
  po::positional_options_description pos;
  pos.add("experiment", 1);
  auto vm = parse(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (experiment.empty()) throw UsageError("run: missing EXPERIMENT.yaml");
  if (threads < 1) throw UsageError("run: --threads must be >= 1, got " + std::to_string(threads));
  if (device != "cpu" && device != "cuda") throw UsageError("run: --device must be cpu or cuda, got '" + device + "'");
  if (device == "cuda" && !at::hasCUDA()) throw UsageError("run: --device cuda, but this LibTorch build has no CUDA device");
  at::set_num_threads(threads);
  auto ex = load_experiment(experiment);
  if (out.empty()) out = "results/" + ex.name + ".h5";
  if (vm.count("fresh")) std::filesystem::remove(out);
  if (auto parent = std::filesystem::path(out).parent_path(); !parent.empty()) std::filesystem::create_directories(parent);
  RunOptions opts;
  opts.threads = threads;
  opts.device = device;
  opts.log = [](const std::string& line) { std::cerr << line << std::endl; };
  auto file_attrs = provenance(opts);
  file_attrs["experiment"] = ex.name;
  file_attrs["experiment_file"] = experiment;
  std::cerr << "psbench: " << ex.cells.size() << " cells from " << experiment << " -> " << out << std::endl;
  PriorCache validation_cache;
  validate_experiment(ex, validation_cache);  // bad input fails before the results file is touched
  Hdf5Store store(out, "a", file_attrs);
  auto sum = run_experiment(ex, store, opts);
  std::cerr << "psbench: " << sum.ok << " ok, " << sum.diverged << " diverged, " << sum.failed << " failed, "
            << sum.skipped << " already complete; results in " << out << std::endl;
  return sum.failed > 0 ? 1 : 0;
}

int cmd_report(const std::vector<std::string>& args) {
  po::options_description desc("psbench report RESULTS.h5");
  std::string file;
  desc.add_options()("help,h", "show this help")("results", po::value(&file), "results HDF5 file");
  po::positional_options_description pos;
  pos.add("results", 1);
  auto vm = parse(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (file.empty()) throw UsageError("report: missing RESULTS.h5");
  if (!std::filesystem::exists(file)) throw ConfigError(file + ": no such results file");
  Hdf5Store store(file, "r");
  auto attrs = store.file_attributes();
  std::cout << "## " << (attrs.count("experiment") ? attrs["experiment"] : file) << "\n\n";
  std::cout << markdown_report(store.read_all());
  return 0;
}

template <class R>
void list_registry(const std::string& title) {
  std::cout << title << ":\n";
  for (const auto& [name, e] : R::instance().entries()) {
    std::cout << "  " << name << " — " << e.description << "\n";
    for (const auto& o : e.options) std::cout << "      " << o.describe() << "\n";
  }
  std::cout << "\n";
}

int cmd_list(const std::vector<std::string>& args) {
  po::options_description desc("psbench list");
  desc.add_options()("help,h", "show this help");
  auto vm = parse(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  list_registry<TaskRegistry>("tasks");
  list_registry<DatasetRegistry>("datasets");
  list_registry<PriorRegistry>("priors");
  list_registry<SamplerRegistry>("samplers");
  list_registry<MetricRegistry>("metrics");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      std::cout << kUsage;
      return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
      std::cout << "psbench " << PSBENCH_VERSION << " (git " << git_revision() << ", LibTorch " << TORCH_VERSION
                << ", " << PSBENCH_BUILD_TYPE << ")\n";
      return 0;
    }
    const std::string cmd = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (cmd == "run") return cmd_run(rest);
    if (cmd == "report") return cmd_report(rest);
    if (cmd == "list") return cmd_list(rest);
    throw UsageError("unknown command '" + cmd + "' (commands: run, report, list; see psbench --help)");
  } catch (const UsageError& e) {
    std::cerr << "psbench: " << e.what() << "\n";
    return 2;
  } catch (const ConfigError& e) {
    std::cerr << "psbench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "psbench: error: " << e.what() << "\n";
    return 1;
  }
}
