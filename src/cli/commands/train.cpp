// psbench train KIND [options]: dispatch to the registered trainers (see cli/train.h).
#include "cli/train.h"

#include <iostream>

#include "cli/command.h"

namespace psbench {

std::map<std::string, Trainer>& trainer_registry() {
  static std::map<std::string, Trainer> registry;
  return registry;
}

namespace {

std::string known_trainers() {
  std::string known;
  for (const auto& [kind, t] : trainer_registry()) known += (known.empty() ? "" : ", ") + kind;
  return known.empty() ? "none registered" : known;
}

int cmd_train(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::ostream& os = args.empty() ? std::cerr : std::cout;
    os << "usage: psbench train KIND [options]   (psbench train KIND --help for its options)\n\nkinds:\n";
    for (const auto& [kind, t] : trainer_registry()) os << "  " << kind << "\n      " << t.summary << "\n";
    return args.empty() ? 2 : 0;
  }
  auto it = trainer_registry().find(args[0]);
  if (it == trainer_registry().end())
    throw UsageError("train: unknown model kind '" + args[0] + "' (known: " + known_trainers() + ")");
  return it->second.main(std::vector<std::string>(args.begin() + 1, args.end()));
}

const CommandRegistrar reg({"train", "train KIND [options]",
                            "train a model psbench ships (classifier, denoiser, consistency...)", cmd_train});

}  // namespace
}  // namespace psbench
