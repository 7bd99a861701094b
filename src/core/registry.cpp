#include "core/registry.h"

namespace psbench {

std::vector<std::string>& registration_errors() {
  // Function-local: registrars of other translation units may run before this file's statics.
  static std::vector<std::string> errors;
  return errors;
}

void check_registrations() {
  const auto& errors = registration_errors();
  if (errors.empty()) return;
  std::string more = errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) + " more duplicates)" : "";
  throw ConfigError("registry: " + errors.front() + more);
}

}  // namespace psbench
