#pragma once
// CLI subcommands register themselves (one file per command) in the same registry mechanism as
// components (core/registry.h), so that `psbench --help` and dispatch need no central list. Commands
// return the process exit code: 0 ok, 2 bad input, 1 runtime failure.
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/registry.h"

namespace psbench {

struct Command {
  std::string name;
  std::string synopsis;     // "run EXPERIMENT.yaml [--out FILE] ..."
  std::string description;  // one line
  std::function<int(const std::vector<std::string>& args)> main;
};

using CommandRegistry = NamedRegistry<Command>;
using CommandRegistrar = NamedRegistrar<Command>;

// `s` single-quoted for /bin/sh: every character literal (commands that build shell lines or scripts).
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Bad command-line usage: exit code 2, like a ConfigError.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace psbench
