#pragma once
// Name -> factory registries. Components register themselves from their own .cpp file with a
// static Registrar, so adding a sampler, task or metric is one file plus one test; the runner has no
// string if/else chains. An unknown name lists the valid ones.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/options.h"

namespace psbench {

template <class T, class... Args>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<T>(const Options&, Args...)>;
  struct Entry {
    std::string name;
    std::string description;
    std::vector<OptionSpec> options;
    Factory make;
  };

  static Registry& instance() {
    static Registry r;
    return r;
  }
  void add(Entry e) { entries_[e.name] = std::move(e); }
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  const Entry& get(const std::string& name, const std::string& kind) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      std::string list;
      for (const auto& [n, e] : entries_) list += (list.empty() ? "" : ", ") + n;
      throw ConfigError("unknown " + kind + " '" + name + "' (known: " + list + ")");
    }
    return it->second;
  }
  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  std::map<std::string, Entry> entries_;
};

template <class T, class... Args>
struct Registrar {
  explicit Registrar(typename Registry<T, Args...>::Entry e) { Registry<T, Args...>::instance().add(std::move(e)); }
};

}  // namespace psbench
