// psbench command-line entry point: dispatches to the registered subcommands (src/cli/commands/).
// Exit codes: 0 success, 2 bad input, 1 runtime failure.
#include <torch/version.h>

#include <iostream>

#include "cli/command.h"
#include "core/errors.h"
#include "core/registry.h"

namespace psbench {
const char* git_revision();
}

using namespace psbench;

namespace {

void usage(std::ostream& os) {
  os << "psbench — benchmarks posterior samplers with generative priors for inverse problems\n\n"
        "usage: psbench <command> [options]\n\ncommands:\n";
  for (const auto& [name, c] : CommandRegistry::instance().entries())
    os << "  " << c.synopsis << "\n      " << c.description << "\n";
  os << "\n  psbench <command> --help   options of one command\n  psbench --version\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    // A name registered twice (a copy-pasted registrar) is a build defect: refuse to run at all rather
    // than silently dispatch to whichever entry registered first.
    check_registrations();
    if (args.empty()) {
      usage(std::cerr);
      return 2;
    }
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      usage(std::cout);
      return 0;
    }
    if (args[0] == "--version") {
      std::cout << "psbench " << PSBENCH_VERSION << " (git " << git_revision() << ", LibTorch " << TORCH_VERSION
                << ", " << PSBENCH_BUILD_TYPE << ")\n";
      return 0;
    }
    const auto& commands = CommandRegistry::instance();
    if (!commands.has(args[0]))
      throw UsageError("unknown command '" + args[0] + "' (commands: " + commands.names() + "; see psbench --help)");
    return commands.get(args[0], "command").main(std::vector<std::string>(args.begin() + 1, args.end()));
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
