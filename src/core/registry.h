#pragma once
// Name -> entry registries: one mechanism for components (tasks, datasets, priors, samplers, metrics),
// CLI commands, trainers and metric feature networks. Entries register themselves from their own .cpp
// file with a static registrar, so adding one is one file plus one test; nothing dispatches through a
// string if/else chain, and an unknown name lists the valid ones.
//
// A name may be registered once. Registration runs in static initialisers, where an exception would
// terminate the process before main() could print anything useful, so a duplicate is recorded instead
// (the first entry is kept): `get` of that name throws a ConfigError, and the CLI calls
// check_registrations() at start-up, which turns any duplicate into a one-line error and exit code 2.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/options.h"

namespace psbench {

// Every duplicate registration of the process, as one line each ("'x' is registered twice: ...").
// Function-local static of an inline function: one list per process, and it exists before any
// registrar of any translation unit runs.
inline std::vector<std::string>& registration_errors() {
  static std::vector<std::string> errors;
  return errors;
}

// Throws ConfigError naming the first duplicate (and how many there are) when there is any.
inline void check_registrations() {
  const auto& errors = registration_errors();
  if (errors.empty()) return;
  const std::string more =
      errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) + " more duplicates)" : "";
  throw ConfigError("registry: " + errors.front() + more);
}

// EntryT needs `name` and `description` members.
template <class EntryT>
class NamedRegistry {
 public:
  using Entry = EntryT;

  static NamedRegistry& instance() {
    static NamedRegistry r;
    return r;
  }
  void add(Entry e) {
    auto it = entries_.find(e.name);
    if (it != entries_.end()) {
      const std::string error = "'" + e.name + "' is registered twice (\"" + it->second.description + "\" and \"" +
                                e.description + "\"): registry names must be unique";
      duplicates_[e.name] = error;
      registration_errors().push_back(error);
      return;
    }
    const std::string name = e.name;
    entries_.emplace(name, std::move(e));
  }
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  const Entry* find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }
  const Entry& get(const std::string& name, const std::string& kind) const {
    if (auto d = duplicates_.find(name); d != duplicates_.end()) throw ConfigError(kind + " " + d->second);
    auto it = entries_.find(name);
    if (it == entries_.end()) throw ConfigError("unknown " + kind + " '" + name + "' (known: " + names() + ")");
    return it->second;
  }
  // "a, b, c" (or "none registered"), for messages.
  std::string names() const {
    std::string list;
    for (const auto& [n, e] : entries_) list += (list.empty() ? "" : ", ") + n;
    return list.empty() ? "none registered" : list;
  }
  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> duplicates_;  // name -> error line
};

template <class EntryT>
struct NamedRegistrar {
  explicit NamedRegistrar(EntryT e) { NamedRegistry<EntryT>::instance().add(std::move(e)); }
};

// A component: built by name from its resolved options (plus registry-specific arguments, e.g. the
// experiment seed of priors).
template <class T, class... Args>
struct ComponentEntry {
  using Factory = std::function<std::unique_ptr<T>(const Options&, Args...)>;
  std::string name;
  std::string description;
  std::vector<OptionSpec> options;
  Factory make;
};

template <class T, class... Args>
using Registry = NamedRegistry<ComponentEntry<T, Args...>>;
template <class T, class... Args>
using Registrar = NamedRegistrar<ComponentEntry<T, Args...>>;

}  // namespace psbench
