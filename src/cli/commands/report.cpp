// psbench report: markdown table of stored results.
#include <ATen/Parallel.h>
#include <ATen/Context.h>

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
  po::options_description desc("psbench report RESULTS.h5");
  std::string file;
  desc.add_options()("help,h", "show this help")("results", po::value(&file), "results HDF5 file");
  po::positional_options_description pos;
  pos.add("results", 1);
  auto vm = parse_command_line(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (file.empty()) throw UsageError("report: missing RESULTS.h5");
  if (!std::filesystem::exists(file)) throw ConfigError(file + ": no such results file");
  Hdf5Store store(file, "r");
  auto attrs = store.file_attributes();
  std::cout << "## " << (attrs.count("experiment") ? attrs["experiment"] : file) << "\n\n";
  std::cout << markdown_report(store.read_all());
  return 0;
}

CommandRegistrar reg_report({"report", "report RESULTS.h5", "markdown table of stored results", cmd_report});

}  // namespace
}  // namespace psbench
