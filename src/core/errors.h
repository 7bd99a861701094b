#pragma once
#include <stdexcept>
#include <string>

namespace psbench {

// Bad user input (experiment file, option, model file shape). The CLI maps it to exit code 2.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Builds "FILE: KEY: message" style messages in one place.
std::string where(const std::string& file, const std::string& key, const std::string& msg);

// The first line of a library's error text (LibTorch's carry a C++ stack trace after it), so that a
// message quoting it stays one line.
inline std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace psbench
