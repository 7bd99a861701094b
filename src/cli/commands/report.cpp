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

// Runs one of psbench's Python report tools (Debian's python3 with h5py, pandas, matplotlib) with `args`;
// its exit code is this command's.
int python_tool(const std::string& script, const std::string& args) {
  const std::string cmd =
      "/usr/bin/python3 " + shell_quote(std::string(PSBENCH_SOURCE_DIR) + "/tools/" + script) + args;
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

int cmd_report(const std::vector<std::string>& args) {
  po::options_description desc(
      "psbench report RESULTS.h5 [MORE.h5 ...] [table options | --summary | --html OUT.html | --figures DIR]");
  std::vector<std::string> files;
  std::string figures, kind, metric, measurements, rows, cols, metrics, format, out, html, figures_dir;
  desc.add_options()("help,h", "show this help")("results", po::value(&files)->composing(), "results HDF5 file(s)")(
      "rows", po::value(&rows), "pivot table: what tells rows apart (task, sampler, prior, dataset, sampler.step_size, ...)")(
      "cols", po::value(&cols), "pivot table: what tells columns apart (default sampler)")(
      "metrics", po::value(&metrics), "pivot table: metric labels, comma-separated (default all)")(
      "nfe", "pivot table: also NFE per measurement (warm-up and sampling apart)")(
      "time", "pivot table: also seconds per measurement (warm-up, sampling, total)")(
      "format", po::value(&format), "pivot table: markdown (default), latex (booktabs) or csv")(
      "out", po::value(&out), "write the table or summary to this file")(
      "allow-mixed", "combine files of different experiments")(
      "summary", "experiments, cells by status with messages, provenance, total time")(
      "html", po::value(&html), "one self-contained HTML page: summary, tables and figures")(
      "figures-dir", po::value(&figures_dir), "with --html: keep the figures in this directory")(
      "figures", po::value(&figures),
      "write the figures (PNG, PDF and the CSV behind each) to DIR instead of the table: metric vs NFE, metric vs "
      "step size, wall time vs K (the paper's Figure 2), loss traces, image grids (tools/psbench_figures.py)")(
      "kind", po::value(&kind), "with --figures: one kind (nfe, step, timing, traces, grids; default all)")(
      "metric", po::value(&metric), "with --figures: the metric of the NFE and step-size figures")(
      "measurements", po::value(&measurements), "with --figures: measurement indices of traces and grids, e.g. 0,3");
  po::positional_options_description pos;
  pos.add("results", -1);
  auto vm = parse_command_line(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (files.empty()) throw UsageError("report: missing RESULTS.h5");
  std::string file_args;
  for (const auto& f : files) {
    if (!std::filesystem::exists(f)) throw ConfigError(f + ": no such results file");
    file_args += " " + shell_quote(f);
  }
  if (!figures.empty()) {  // the plotting lives in one Python script
    std::string a = file_args + " --out " + shell_quote(figures);
    if (!kind.empty()) a += " --kind " + shell_quote(kind);
    if (!metric.empty()) a += " --metric " + shell_quote(metric);
    if (!measurements.empty()) a += " --measurements " + shell_quote(measurements);
    return python_tool("psbench_figures.py", a);
  }
  if (!kind.empty() || !metric.empty() || !measurements.empty())
    throw UsageError("report: --kind, --metric and --measurements go with --figures DIR");
  // Pivot tables, the summary, the HTML page and several files: tools/psbench_table.py.
  const bool table_tool = files.size() > 1 || !rows.empty() || !cols.empty() || !metrics.empty() || vm.count("nfe") ||
                          vm.count("time") || !format.empty() || !out.empty() || vm.count("allow-mixed") ||
                          vm.count("summary") || !html.empty();
  if (table_tool) {
    std::string a = file_args;
    for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
             {"--rows", rows}, {"--cols", cols}, {"--metrics", metrics}, {"--format", format}, {"--out", out},
             {"--html", html}, {"--figures-dir", figures_dir}})
      if (!value.empty()) a += " " + flag + " " + shell_quote(value);
    for (const char* flag : {"nfe", "time", "allow-mixed", "summary"})
      if (vm.count(flag)) a += std::string(" --") + flag;
    return python_tool("psbench_table.py", a);
  }
  // One file, no options: one markdown row per cell.
  Hdf5Store store(files.front(), "r");
  auto attrs = store.file_attributes();
  // The whole report is made before any of it is printed: a file damaged past its header gives the one-line
  // error alone, not a heading followed by it.
  const std::string body = markdown_report(store.read_all(), files.front());
  std::cout << "## " << (attrs.count("experiment") ? attrs["experiment"] : files.front()) << "\n\n" << body;
  return 0;
}

CommandRegistrar reg_report({"report",
                             "report RESULTS.h5 [MORE.h5 ...] [--rows F --cols F --metrics L --nfe --time --format markdown|latex|csv] "
                             "[--summary] [--html OUT] [--figures DIR]",
                             "tables of stored results (a row per cell, or pivots), a summary, an HTML page, figures", cmd_report});

}  // namespace
}  // namespace psbench
