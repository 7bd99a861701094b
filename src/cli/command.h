#pragma once
// CLI subcommands register themselves (one file per command), so that `psbench --help` and dispatch
// need no central list. Commands return the process exit code: 0 ok, 2 bad input, 1 runtime failure.
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace psbench {

struct Command {
  std::string name;
  std::string synopsis;  // "run EXPERIMENT.yaml [--out FILE] ..."
  std::string summary;   // one line
  std::function<int(const std::vector<std::string>& args)> main;
};

std::map<std::string, Command>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { command_registry()[c.name] = std::move(c); }
};

// Bad command-line usage: exit code 2, like a ConfigError.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace psbench
