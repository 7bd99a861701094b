#pragma once
// Typed options of a registered component (task, dataset, prior, sampler, metric).
// A component declares its options once as OptionSpecs; experiment files are validated against them,
// so unknown keys, wrong types and out-of-range values are errors, never ignored or clamped.
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace YAML { class Node; class Exception; }

namespace psbench {

using OptionValue = std::variant<bool, int64_t, double, std::string>;

enum class OptionType { Bool, Int, Real, Choice, Text };

struct OptionSpec {
  std::string key;
  OptionType type = OptionType::Real;
  OptionValue default_value;
  std::string help;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  std::vector<std::string> choices;  // for Choice
  // Execution details (batch sizes, device, cache directories) that do not change the numbers a cell
  // computes, only how fast or where: left out of cell keys at their default, so that a file's keys do
  // not depend on them; a value set away from the default enters the key, so that rows differing only in
  // it (a timing comparison of batch sizes) stay distinct cells.
  bool execution_only = false;
  // An option added after results were stored under keys that lack it: left out of the key while at its
  // default (which reproduces what those results computed), so that they keep their keys.
  bool keyless_default = false;

  // Fluent builders used by registrations.
  static OptionSpec real(std::string key, double def, std::string help);
  static OptionSpec integer(std::string key, int64_t def, std::string help);
  static OptionSpec boolean(std::string key, bool def, std::string help);
  static OptionSpec choice(std::string key, std::string def, std::vector<std::string> choices, std::string help);
  static OptionSpec text(std::string key, std::string def, std::string help);
  OptionSpec& at_least(double lo) { min = lo; min_exclusive = false; return *this; }
  OptionSpec& above(double lo) { min = lo; min_exclusive = true; return *this; }
  OptionSpec& at_most(double hi) { max = hi; return *this; }
  OptionSpec& execution() { execution_only = true; return *this; }
  OptionSpec& added_later() { keyless_default = true; return *this; }

  std::string type_name() const;
  std::string describe() const;  // "key (type, default D, range): help"
};

std::string format_value(const OptionValue& v);  // canonical text: %.17g for reals

// Resolved options of one component: every declared key present, typed.
class Options {
 public:
  Options() = default;
  // `execution_defaults`: the options left out of the key at their defaults (execution-only, added later).
  Options(std::string component, std::map<std::string, OptionValue> values,
          std::map<std::string, OptionValue> execution_defaults = {})
      : component_(std::move(component)), values_(std::move(values)),
        execution_defaults_(std::move(execution_defaults)) {}
  const std::string& component() const { return component_; }
  bool get_bool(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_real(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  const std::map<std::string, OptionValue>& values() const { return values_; }
  void set(const std::string& key, OptionValue v) { values_[key] = std::move(v); }
  // Canonical one-line form "name{k=v,...}", sorted keys, execution-only keys left out while at their
  // default; the basis of stable keys.
  std::string canonical() const;

 private:
  const OptionValue& at(const std::string& key) const;
  std::string component_;
  std::map<std::string, OptionValue> values_;
  std::map<std::string, OptionValue> execution_defaults_;
};

// Parses one scalar YAML node against its spec; `context` prefixes the error message.
OptionValue parse_option(const OptionSpec& spec, const YAML::Node& node, const std::string& context);

// Checks a loaded YAML document before it is read: a key repeated in one mapping (yaml-cpp keeps both and
// lookups see the first, so the second would be silently ignored) and a document whose aliases expand to more
// than kMaxYamlNodes nodes (an alias bomb: walking it would not end) are ConfigErrors naming `file`, the line
// and the key.
constexpr int64_t kMaxYamlNodes = 100000;
void check_yaml_document(const YAML::Node& root, const std::string& file);
// A yaml-cpp exception (a syntax error, or a bad conversion that got past the checks) as the ConfigError
// "FILE:LINE:COLUMN: KEY: yaml-cpp's message", KEY left out when empty: the loaders' last line of defence, so
// that a document psbench did not foresee is still refused naming the file, never let through as another error.
struct ConfigError;
ConfigError yaml_error(const std::string& file, const std::string& key, const YAML::Exception& e);
void check_range(const OptionSpec& spec, const OptionValue& v, const std::string& context);
// Fills in defaults for keys not given; validates a fully specified map.
Options resolve_options(const std::string& component, const std::vector<OptionSpec>& specs,
                        std::map<std::string, OptionValue> given);

}  // namespace psbench
