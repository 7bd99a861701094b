#pragma once
#include <cstdio>
#include <stdexcept>
#include <string>

namespace psbench {

// The message with control characters written as escapes (\n, \r, \t, \xNN), so that it is one line whatever
// it quotes: a YAML block scalar ends in a newline, stb_image names an unknown PNG chunk by its four raw bytes,
// yaml-cpp quotes the bad escape character itself.
inline std::string one_line(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

// Bad user input (experiment file, option, model file shape). The CLI maps it to exit code 2 and prints the
// message as its one line, so the message is made one line here rather than at each of its ~200 throw sites.
struct ConfigError : std::runtime_error {
  explicit ConfigError(const std::string& msg) : std::runtime_error(one_line(msg)) {}
  explicit ConfigError(const char* msg) : ConfigError(std::string(msg)) {}
};

// Builds "FILE: KEY: message" style messages in one place.
std::string where(const std::string& file, const std::string& key, const std::string& msg);

// The first line of a library's error text (LibTorch's carry a C++ stack trace after it), so that a
// message quoting it stays one line.
inline std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace psbench
