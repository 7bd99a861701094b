#include "core/options.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/errors.h"

namespace psbench {

OptionSpec OptionSpec::real(std::string key, double def, std::string help) {
  OptionSpec s;
  s.key = std::move(key); s.type = OptionType::Real; s.default_value = def; s.help = std::move(help);
  return s;
}
OptionSpec OptionSpec::integer(std::string key, int64_t def, std::string help) {
  OptionSpec s;
  s.key = std::move(key); s.type = OptionType::Int; s.default_value = def; s.help = std::move(help);
  return s;
}
OptionSpec OptionSpec::boolean(std::string key, bool def, std::string help) {
  OptionSpec s;
  s.key = std::move(key); s.type = OptionType::Bool; s.default_value = def; s.help = std::move(help);
  return s;
}
OptionSpec OptionSpec::choice(std::string key, std::string def, std::vector<std::string> choices, std::string help) {
  OptionSpec s;
  s.key = std::move(key); s.type = OptionType::Choice; s.default_value = std::move(def);
  s.choices = std::move(choices); s.help = std::move(help);
  return s;
}
OptionSpec OptionSpec::text(std::string key, std::string def, std::string help) {
  OptionSpec s;
  s.key = std::move(key); s.type = OptionType::Text; s.default_value = std::move(def); s.help = std::move(help);
  return s;
}

std::string OptionSpec::type_name() const {
  switch (type) {
    case OptionType::Bool: return "bool";
    case OptionType::Int: return "int";
    case OptionType::Real: return "real";
    case OptionType::Choice: return "choice";
    case OptionType::Text: return "text";
  }
  return "?";
}

std::string format_value(const OptionValue& v) {
  if (auto b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto d = std::get_if<double>(&v)) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    // Prefer %g when it round-trips, else the shortest representation that does.
    char plain[40];
    std::snprintf(plain, sizeof plain, "%g", *d);
    if (std::strtod(plain, nullptr) == *d) return plain;
    for (int prec = 7; prec <= 17; ++prec) {
      char shorter[40];
      std::snprintf(shorter, sizeof shorter, "%.*g", prec, *d);
      if (std::strtod(shorter, nullptr) == *d) return shorter;
    }
    return buf;
  }
  return std::get<std::string>(v);
}

std::string OptionSpec::describe() const {
  std::ostringstream os;
  os << key << " (" << type_name();
  if (type == OptionType::Choice) {
    os << " of";
    for (size_t i = 0; i < choices.size(); ++i) os << (i ? "|" : " ") << choices[i];
  }
  os << ", default " << format_value(default_value);
  if (type == OptionType::Int || type == OptionType::Real) {
    if (std::isfinite(min) || std::isfinite(max)) {
      os << ", " << (min_exclusive ? "> " : ">= ") << format_value(min);
      if (std::isfinite(max)) os << " and <= " << format_value(max);
    }
  }
  os << "): " << help;
  return os.str();
}

void check_range(const OptionSpec& spec, const OptionValue& v, const std::string& context) {
  double x;
  if (auto i = std::get_if<int64_t>(&v)) x = static_cast<double>(*i);
  else if (auto d = std::get_if<double>(&v)) x = *d;
  else if (spec.type == OptionType::Choice) {
    const auto& s = std::get<std::string>(v);
    if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
      std::string list;
      for (const auto& c : spec.choices) list += (list.empty() ? "" : ", ") + c;
      throw ConfigError(context + ": '" + s + "' is not one of " + list);
    }
    return;
  } else return;
  if (!std::isfinite(x)) throw ConfigError(context + ": value " + format_value(v) + " is not finite");
  bool low = spec.min_exclusive ? !(x > spec.min) : !(x >= spec.min);
  if (low || x > spec.max) {
    std::string range = std::string(spec.min_exclusive ? "> " : ">= ") + format_value(spec.min);
    if (std::isfinite(spec.max)) range += " and <= " + format_value(spec.max);
    throw ConfigError(context + ": value " + format_value(v) + " out of range (must be " + range + ")");
  }
}

OptionValue parse_option(const OptionSpec& spec, const YAML::Node& node, const std::string& context) {
  if (!node.IsScalar())
    throw ConfigError(context + ": expected a " + spec.type_name() + " scalar");
  const std::string text = node.Scalar();
  OptionValue v;
  switch (spec.type) {
    case OptionType::Bool: {
      bool b;
      if (!YAML::convert<bool>::decode(node, b))
        throw ConfigError(context + ": '" + text + "' is not a bool (true/false)");
      v = b;
      break;
    }
    case OptionType::Int: {
      size_t pos = 0;
      long long i = 0;
      try { i = std::stoll(text, &pos); } catch (...) { pos = 0; }
      if (pos == 0 || pos != text.size())
        throw ConfigError(context + ": '" + text + "' is not an integer");
      v = static_cast<int64_t>(i);
      break;
    }
    case OptionType::Real: {
      size_t pos = 0;
      double d = 0;
      try { d = std::stod(text, &pos); } catch (...) { pos = 0; }
      if (pos == 0 || pos != text.size())
        throw ConfigError(context + ": '" + text + "' is not a number");
      v = d;
      break;
    }
    case OptionType::Choice:
    case OptionType::Text: v = text; break;
  }
  check_range(spec, v, context);
  return v;
}

Options resolve_options(const std::string& component, const std::vector<OptionSpec>& specs,
                        std::map<std::string, OptionValue> given) {
  // Values given programmatically (tests, benchmarks, commands) pass the same checks as YAML values.
  for (auto& [key, value] : given) {
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.key == key; });
    const std::string context = component + ": " + key + "=" + format_value(value);
    if (spec == specs.end()) throw ConfigError(context + ": unknown option");
    if (spec->type == OptionType::Real && std::holds_alternative<int64_t>(value))
      value = static_cast<double>(std::get<int64_t>(value));
    const bool type_ok = (spec->type == OptionType::Bool && std::holds_alternative<bool>(value)) ||
                         (spec->type == OptionType::Int && std::holds_alternative<int64_t>(value)) ||
                         (spec->type == OptionType::Real && std::holds_alternative<double>(value)) ||
                         ((spec->type == OptionType::Choice || spec->type == OptionType::Text) &&
                          std::holds_alternative<std::string>(value));
    if (!type_ok) throw ConfigError(context + ": value " + format_value(value) + " is not a " + spec->type_name());
    check_range(*spec, value, context);
  }
  std::map<std::string, OptionValue> exec;
  for (const auto& spec : specs) {
    if (!given.count(spec.key)) given[spec.key] = spec.default_value;
    if (spec.execution_only || spec.keyless_default) exec[spec.key] = spec.default_value;
  }
  return Options(component, std::move(given), std::move(exec));
}

const OptionValue& Options::at(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw std::logic_error("option '" + key + "' not declared by " + component_);
  return it->second;
}
bool Options::get_bool(const std::string& key) const { return std::get<bool>(at(key)); }
int64_t Options::get_int(const std::string& key) const { return std::get<int64_t>(at(key)); }
double Options::get_real(const std::string& key) const { return std::get<double>(at(key)); }
const std::string& Options::get_string(const std::string& key) const { return std::get<std::string>(at(key)); }

std::string Options::canonical() const {
  std::string out = component_ + "{";
  bool first = true;
  for (const auto& [k, v] : values_) {
    auto exec = execution_defaults_.find(k);
    if (exec != execution_defaults_.end() && exec->second == v) continue;
    out += (first ? "" : ",") + k + "=" + format_value(v);
    first = false;
  }
  return out + "}";
}

namespace {

void check_yaml_node(const YAML::Node& n, const std::string& file, const std::string& path, int64_t& visited) {
  if (++visited > kMaxYamlNodes)
    throw ConfigError(file + ": the document expands to more than " + std::to_string(kMaxYamlNodes) +
                      " nodes (nested aliases?); psbench reads no document that large");
  if (n.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : n) {
      // psbench's keys are names; a sequence, map or null as a key (`[a]: 1`, `? {a: 1}`, `~: 1`) would make
      // every later `as<std::string>()` of the key throw yaml-cpp's bad conversion instead of naming it.
      if (!kv.first.IsScalar())
        throw ConfigError(file + ":" + std::to_string(kv.first.Mark().line + 1) + ": " +
                          (path.empty() ? std::string("top level") : path) + ": a key must be a plain name, not a " +
                          (kv.first.IsSequence() ? "sequence" : kv.first.IsMap() ? "map" : "null"));
      const std::string key = kv.first.Scalar();
      const std::string at = path.empty() ? key : path + "." + key;
      if (!seen.insert(key).second)
        throw ConfigError(file + ":" + std::to_string(kv.first.Mark().line + 1) + ": " + at +
                          ": duplicate key (the mapping already has '" + key + "'; psbench would read only the first)");
      check_yaml_node(kv.second, file, at, visited);
    }
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i)
      check_yaml_node(n[i], file, path + "[" + std::to_string(i) + "]", visited);
  }
}

}  // namespace

ConfigError yaml_error(const std::string& file, const std::string& key, const YAML::Exception& e) {
  std::string at = file;
  if (!e.mark.is_null()) at += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
  return ConfigError(at + ": " + (key.empty() ? "" : key + ": ") + first_line(e.msg));
}

void check_yaml_document(const YAML::Node& root, const std::string& file) {
  int64_t visited = 0;
  check_yaml_node(root, file, "", visited);
}

}  // namespace psbench
