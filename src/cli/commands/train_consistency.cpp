// psbench train consistency --teacher FILE: options of the consistency distillation
// (nn/train_consistency.h).
#include <iostream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "cli/train.h"
#include "cli/train_options.h"
#include "nn/train_consistency.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

int cmd_train_consistency(const std::vector<std::string>& args) {
  nn::TrainSettings s;
  s.lr = 1e-4;
  s.warmup = 0;
  nn::ConsistencyTraining config;
  std::string distance = "pseudo_huber";
  po::options_description desc("psbench train consistency --teacher FILE --out FILE [options]");
  desc.add_options()("help,h", "show this help");
  add_train_options(desc, s);
  desc.add_options()("teacher", po::value(&config.teacher), "EDM denoiser model file (psbench train denoiser)")(
      "intervals", po::value(&config.intervals)->default_value(config.intervals),
      "N: points of the Karras discretisation grid")(
      "target-ema", po::value(&config.target_ema)->default_value(config.target_ema), "EMA decay of the target network")(
      "distance", po::value(&distance)->default_value(distance), "pseudo_huber or l2");
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  validate_train_settings(s, "consistency", args);
  if (config.teacher.empty()) throw UsageError("train consistency: missing --teacher FILE");
  if (config.intervals < 2) throw UsageError("train consistency: --intervals must be >= 2");
  if (!(config.target_ema >= 0 && config.target_ema < 1))
    throw UsageError("train consistency: --target-ema must be in [0, 1)");
  if (distance == "pseudo_huber") config.distance = nn::ConsistencyDistance::PseudoHuber;
  else if (distance == "l2") config.distance = nn::ConsistencyDistance::L2;
  else throw UsageError("train consistency: --distance must be pseudo_huber or l2, got '" + distance + "'");
  nn::train_consistency(s, config);
  return 0;
}

const TrainerRegistrar reg_train_consistency({"consistency", "consistency distillation of an EDM denoiser into a one-step generator",
                            cmd_train_consistency});

}  // namespace
}  // namespace psbench
