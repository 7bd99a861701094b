// psbench evaluate RESULTS.h5: re-scores the stored posterior samples of every cell with the current
// metric set (or a given one), without re-sampling.
#include <ATen/Parallel.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "core/threads.h"
#include "runner/experiment.h"
#include "runner/report.h"
#include "runner/runner.h"
#include "store/result_store.h"
#include "store/schema.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

int cmd_evaluate(const std::vector<std::string>& args) {
  po::options_description desc("psbench evaluate RESULTS.h5 [options]");
  std::string file, out, metrics_text, metrics_file;
  int threads = 1;
  desc.add_options()("help,h", "show this help")("results", po::value(&file), "results HDF5 file")(
      "out,o", po::value(&out), "write the re-scored cells to this file instead of updating RESULTS.h5 in place")(
      "metrics", po::value(&metrics_text),
      "metrics as a YAML list, e.g. '[psnr, {name: kid_fmnist_cnn, subsets: 50}]' (default: each cell's explicit "
      "list, else every registered metric that applies)")(
      "metrics-file", po::value(&metrics_file), "the same list read from a YAML file")(
      "threads,t", po::value(&threads)->default_value(1), "intra-op threads");
  po::positional_options_description pos;
  pos.add("results", 1);
  auto vm = parse_command_line(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (file.empty()) throw UsageError("evaluate: missing RESULTS.h5");
  if (threads < 1) throw UsageError("evaluate: --threads must be >= 1");
  if (!metrics_text.empty() && !metrics_file.empty()) throw UsageError("evaluate: give --metrics or --metrics-file, not both");
  if (!std::filesystem::exists(file)) throw ConfigError(file + ": no such results file");
  set_compute_threads(threads);
  std::vector<Options> metrics;
  const std::vector<Options>* chosen = nullptr;
  if (!metrics_file.empty()) {
    std::ifstream in(metrics_file);
    if (!in) throw ConfigError(metrics_file + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    metrics_text = ss.str();
  }
  if (!metrics_text.empty()) {
    metrics = parse_metric_list(metrics_text, metrics_file.empty() ? "--metrics" : metrics_file);
    chosen = &metrics;
  }
  Hdf5Store in(file, "r");
  auto cells = in.read_all();
  auto file_attrs = in.file_attributes();
  if (!out.empty() && std::filesystem::exists(out) && std::filesystem::equivalent(out, file)) out.clear();
  if (!out.empty()) std::filesystem::remove(out);
  Hdf5Store store(out.empty() ? file : out, "a", file_attrs);
  PriorCache priors;
  int rescored = 0, skipped = 0, failed = 0;
  for (const auto& cell : cells) {
    bool has_samples = false;
    for (const auto& [k, t] : cell.arrays) has_samples |= k.rfind(schema::kSamplesGroup, 0) == 0;
    // A diverged cell is scored over the measurements that kept samples, as when it ran; a failed one has none.
    const bool ok = schema::parse_status(cell.attr(schema::kStatus)) != schema::CellStatus::Failed;
    if (!ok || !has_samples) {
      std::cerr << "cell " << cell.key << ": "
                << (!ok ? "status " + cell.attr(schema::kStatus) : std::string("no stored samples"))
                << ", not re-scored\n";
      ++skipped;
      if (!out.empty()) store.write(cell);
      continue;
    }
    try {
      store.write(rescore_cell(cell, chosen, priors));
      ++rescored;
      std::cerr << "cell " << cell.key << ": re-scored\n";
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      ++failed;
      std::string msg = e.what();
      std::cerr << "cell " << cell.key << ": re-scoring failed: " << msg.substr(0, msg.find('\n')) << "\n";
      if (!out.empty()) store.write(cell);
    }
  }
  std::cerr << "evaluate: " << rescored << " cells re-scored, " << skipped << " skipped, " << failed << " failed -> "
            << (out.empty() ? file : out) << "\n";
  return failed > 0 ? 1 : 0;
}

CommandRegistrar reg_evaluate({"evaluate", "evaluate RESULTS.h5 [--metrics YAML] [--out FILE]",
                      "re-score stored posterior samples (store_samples: true) with the current metrics, without "
                      "re-sampling",
                      cmd_evaluate});

}  // namespace
}  // namespace psbench
