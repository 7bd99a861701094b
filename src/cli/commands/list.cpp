// psbench list: every registered component with its options.
#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "data/dataset.h"
#include "metrics/metric.h"
#include "operators/operator.h"
#include "priors/prior.h"
#include "samplers/sampler.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

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
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  list_registry<TaskRegistry>("tasks");
  list_registry<DatasetRegistry>("datasets");
  list_registry<PriorRegistry>("priors");
  list_registry<SamplerRegistry>("samplers");
  list_registry<MetricRegistry>("metrics");
  return 0;
}

CommandRegistrar reg_list({"list", "list", "registered tasks, datasets, priors, samplers and metrics with their options",
                           cmd_list});

}  // namespace
}  // namespace psbench
