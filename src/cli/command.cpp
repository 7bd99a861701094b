#include "cli/command.h"

namespace psbench {

std::map<std::string, Command>& command_registry() {
  static std::map<std::string, Command> r;
  return r;
}

}  // namespace psbench
