// psbench train KIND [options]: dispatch to the registered trainers (see cli/train.h).
#include "cli/train.h"

#include <iostream>

#include "cli/command.h"

namespace psbench {

namespace {

int cmd_train(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::ostream& os = args.empty() ? std::cerr : std::cout;
    os << "usage: psbench train KIND [options]   (psbench train KIND --help for its options)\n\nkinds:\n";
    for (const auto& [kind, t] : TrainerRegistry::instance().entries())
      os << "  " << kind << "\n      " << t.description << "\n";
    return args.empty() ? 2 : 0;
  }
  const auto& trainers = TrainerRegistry::instance();
  if (!trainers.has(args[0]))
    throw UsageError("train: unknown model kind '" + args[0] + "' (known: " + trainers.names() + ")");
  return trainers.get(args[0], "trainer").main(std::vector<std::string>(args.begin() + 1, args.end()));
}

const CommandRegistrar reg({"train", "train KIND [options]",
                            "train a model psbench ships (classifier, denoiser, consistency...)", cmd_train});

}  // namespace
}  // namespace psbench
