// psbench report: markdown table of stored results.
#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "runner/report.h"
#include "store/result_store.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

int cmd_report(const std::vector<std::string>& args) {
  po::options_description desc("psbench report RESULTS.h5 [--figures DIR [--kind K --metric LABEL --measurements L]]");
  std::string file, figures, kind, metric, measurements;
  desc.add_options()("help,h", "show this help")("results", po::value(&file), "results HDF5 file")(
      "figures", po::value(&figures),
      "write the figures (PNG, PDF and the CSV behind each) to DIR instead of the table: metric vs NFE, metric vs "
      "step size, wall time vs K (the paper's Figure 2), loss traces, image grids (tools/psbench_figures.py)")(
      "kind", po::value(&kind), "with --figures: one kind (nfe, step, timing, traces, grids; default all)")(
      "metric", po::value(&metric), "with --figures: the metric of the NFE and step-size figures")(
      "measurements", po::value(&measurements), "with --figures: measurement indices of traces and grids, e.g. 0,3");
  po::positional_options_description pos;
  pos.add("results", 1);
  auto vm = parse_command_line(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (file.empty()) throw UsageError("report: missing RESULTS.h5");
  if (!std::filesystem::exists(file)) throw ConfigError(file + ": no such results file");
  if (!figures.empty()) {
    // The plotting lives in one Python script (Debian's matplotlib); its exit code is this command's.
    std::string cmd = "/usr/bin/python3 " + shell_quote(std::string(PSBENCH_SOURCE_DIR) + "/tools/psbench_figures.py") + " " +
                      shell_quote(file) + " --out " + shell_quote(figures);
    if (!kind.empty()) cmd += " --kind " + shell_quote(kind);
    if (!metric.empty()) cmd += " --metric " + shell_quote(metric);
    if (!measurements.empty()) cmd += " --measurements " + shell_quote(measurements);
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
  } else if (!kind.empty() || !metric.empty() || !measurements.empty()) {
    throw UsageError("report: --kind, --metric and --measurements go with --figures DIR");
  }
  Hdf5Store store(file, "r");
  auto attrs = store.file_attributes();
  std::cout << "## " << (attrs.count("experiment") ? attrs["experiment"] : file) << "\n\n";
  std::cout << markdown_report(store.read_all());
  return 0;
}

CommandRegistrar reg_report({"report", "report RESULTS.h5 [--figures DIR]",
                             "markdown table of stored results, or its figures (PNG/PDF + CSV)", cmd_report});

}  // namespace
}  // namespace psbench
