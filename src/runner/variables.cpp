#include "runner/variables.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

#include "core/errors.h"

namespace psbench {
namespace {

bool valid_name(const std::string& n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// Where a YAML comment starts on this line (npos if none): '#' at the start or after blank space,
// outside quotes.
size_t comment_start(const std::string& line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(line[i - 1])))) {
      return i;
    }
  }
  return std::string::npos;
}

}  // namespace

std::string expand_variables(const std::string& text, const std::string& path, const Variables& vars) {
  std::istringstream in(text);
  std::string line, out;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const size_t end = comment_start(line);
    std::string expanded;
    size_t i = 0;
    while (i < line.size()) {
      if (i < end && line.compare(i, 2, "${") == 0) {
        const size_t close = line.find('}', i + 2);
        const std::string where = path + ":" + std::to_string(number) + ": ";
        if (close == std::string::npos || close > end)
          throw ConfigError(where + "unterminated variable reference '" + line.substr(i) + "'");
        const std::string body = line.substr(i + 2, close - i - 2);
        const size_t dash = body.find(":-");
        const std::string name = body.substr(0, dash);
        if (!valid_name(name))
          throw ConfigError(where + "bad variable name '" + name + "' in '${" + body + "}' (letters, digits, _)");
        if (auto it = vars.find(name); it != vars.end()) {
          expanded += it->second;
        } else if (const char* env = std::getenv(name.c_str()); env && *env) {
          expanded += env;
        } else if (dash != std::string::npos) {
          expanded += body.substr(dash + 2);
        } else {
          throw ConfigError(where + "${" + name + "} is not set (pass --var " + name + "=VALUE or set the " +
                            "environment variable " + name + ")");
        }
        i = close + 1;
      } else {
        expanded += line[i++];
      }
    }
    out += expanded + "\n";
  }
  return out;
}

std::pair<std::string, std::string> parse_variable_assignment(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || !valid_name(arg.substr(0, eq)))
    throw ConfigError("--var " + arg + ": expected NAME=VALUE (NAME of letters, digits and _)");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

}  // namespace psbench
