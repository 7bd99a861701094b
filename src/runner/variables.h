#pragma once
// Variables in experiment files: `${NAME}` in a value is replaced by a variable given on the command line
// (`psbench run --var NAME=VALUE`) or, failing that, by the environment variable NAME; `${NAME:-text}`
// falls back to `text`. What a file needs from outside (model exports, image folders, metric networks —
// experiments/paper/) is thus named in the file, and an unset variable is a one-line error naming the
// file, the line and the variable before anything runs. Comments are left alone.
#include <map>
#include <string>

namespace psbench {

using Variables = std::map<std::string, std::string>;

// The text with every ${NAME} / ${NAME:-default} outside comments expanded; throws ConfigError
// "FILE:LINE: ${NAME} is not set (...)" for an unset variable without a default, and for a malformed
// reference.
std::string expand_variables(const std::string& text, const std::string& path, const Variables& vars);

// "NAME=VALUE" as given to --var; throws ConfigError for anything else.
std::pair<std::string, std::string> parse_variable_assignment(const std::string& arg);

}  // namespace psbench
