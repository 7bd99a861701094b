// psbench merge: combines the results files of an experiment's shards (psbench run --shard i/N).
#include <iostream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "store/merge.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

int cmd_merge(const std::vector<std::string>& args) {
  po::options_description desc("psbench merge OUT.h5 SHARD.h5 [SHARD.h5 ...]");
  std::vector<std::string> files;
  desc.add_options()("help,h", "show this help")("files", po::value(&files)->composing(), "OUT.h5 then the inputs");
  po::positional_options_description pos;
  pos.add("files", -1);
  auto vm = parse_command_line(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (files.size() < 2) throw UsageError("merge: need OUT.h5 and at least one input file");
  const std::string out = files.front();
  const std::vector<std::string> inputs(files.begin() + 1, files.end());
  const auto sum = merge_results(out, inputs);
  std::cerr << "psbench merge: " << sum.cells << " cells" << (sum.experiment_cells.empty() ? "" : " of " + sum.experiment_cells)
            << " (experiment " << sum.experiment_hash << ") from " << inputs.size() << " file(s)";
  if (sum.duplicates > 0) std::cerr << ", " << sum.duplicates << " duplicate(s) with equal results written once";
  std::cerr << " -> " << out << std::endl;
  return 0;
}

CommandRegistrar reg_merge({"merge", "merge OUT.h5 SHARD.h5 [SHARD.h5 ...]",
                            "combine the results files of one experiment's shards (run --shard i/N)", cmd_merge});

}  // namespace
}  // namespace psbench
