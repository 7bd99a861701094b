#pragma once
// Options declared once. A component's options struct declares each field in one place — key, default,
// range, choices, help — and the declaration yields the OptionSpecs the experiment parser validates
// against, the typed struct filled from resolved Options, and its defaults:
//
//   const OptionSchema<DpsOptions>& DpsOptions::schema() {
//     static const auto s = [] {
//       OptionSchema<DpsOptions> s;
//       s.integer(&DpsOptions::steps, "steps", 100, "S: reverse steps").at_least(1);
//       s.choice(&DpsOptions::convention, "convention", Convention::Paper,
//                {{"paper", Convention::Paper}, {"code", Convention::Code}}, "...");
//       return s;
//     }();
//     return s;
//   }
//
// Choice options become enums here, so no sampler compares option strings in its loops. Shared groups
// (chains, burn-in, warm start...) are schemas of their own, included with group(). Checks that involve
// several fields go in check(): they run at parse time, i.e. when the experiment is validated.
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/errors.h"
#include "core/options.h"

namespace psbench {

template <class T>
class OptionSchema {
 public:
  OptionSpec& real(double T::*field, std::string key, double def, std::string help) {
    return add(OptionSpec::real(key, def, std::move(help)),
               [field, key](T& t, const Options& o) { t.*field = o.get_real(key); }, [field, def](T& t) { t.*field = def; });
  }
  OptionSpec& integer(int64_t T::*field, std::string key, int64_t def, std::string help) {
    return add(OptionSpec::integer(key, def, std::move(help)),
               [field, key](T& t, const Options& o) { t.*field = o.get_int(key); }, [field, def](T& t) { t.*field = def; });
  }
  OptionSpec& boolean(bool T::*field, std::string key, bool def, std::string help) {
    return add(OptionSpec::boolean(key, def, std::move(help)),
               [field, key](T& t, const Options& o) { t.*field = o.get_bool(key); }, [field, def](T& t) { t.*field = def; });
  }
  OptionSpec& text(std::string T::*field, std::string key, std::string def, std::string help) {
    return add(OptionSpec::text(key, def, std::move(help)),
               [field, key](T& t, const Options& o) { t.*field = o.get_string(key); },
               [field, def](T& t) { t.*field = def; });
  }
  // A choice parsed into an enum (or any copyable type): `names` pairs each accepted word with its value.
  template <class E>
  OptionSpec& choice(E T::*field, std::string key, E def, std::vector<std::pair<std::string, E>> names,
                     std::string help) {
    std::vector<std::string> words;
    std::string def_word;
    for (const auto& [w, v] : names) {
      words.push_back(w);
      if (v == def && def_word.empty()) def_word = w;
    }
    if (def_word.empty()) throw std::logic_error("option " + key + ": the default is not among its choices");
    return add(OptionSpec::choice(key, def_word, words, std::move(help)),
               [field, key, names](T& t, const Options& o) {
                 const auto& w = o.get_string(key);
                 for (const auto& [name, v] : names)
                   if (name == w) { t.*field = v; return; }
                 throw ConfigError("option " + key + ": '" + w + "' is not a valid choice");
               },
               [field, def](T& t) { t.*field = def; });
  }
  // Includes a shared group of options (its keys sit at the same level as this schema's own).
  template <class G>
  void group(G T::*field, const OptionSchema<G>& sub) {
    for (const auto& spec : sub.specs()) {
      check_new_key(spec.key);
      specs_.push_back(spec);
    }
    setters_.push_back([field, sub](T& t, const Options& o) { t.*field = sub.parse(o); });
    defaulters_.push_back([field, sub](T& t) { t.*field = sub.defaults(); });
  }
  // A check across fields: returns an error message (empty = fine).
  void check(std::function<std::string(const T&)> f) { checks_.push_back(std::move(f)); }

  std::vector<OptionSpec> specs() const { return {specs_.begin(), specs_.end()}; }

  // The typed struct from resolved (validated) options; cross-field checks throw ConfigError.
  T parse(const Options& o) const {
    T t{};
    for (const auto& set : setters_) set(t, o);
    for (const auto& c : checks_)
      if (auto why = c(t); !why.empty())
        throw ConfigError((o.component().empty() ? std::string() : o.component() + ": ") + why);
    return t;
  }
  T defaults() const {
    T t{};
    for (const auto& d : defaulters_) d(t);
    return t;
  }

 private:
  OptionSpec& add(OptionSpec spec, std::function<void(T&, const Options&)> set, std::function<void(T&)> def) {
    check_new_key(spec.key);
    specs_.push_back(std::move(spec));
    setters_.push_back(std::move(set));
    defaulters_.push_back(std::move(def));
    return specs_.back();  // a deque keeps references valid as declarations follow
  }
  void check_new_key(const std::string& key) const {
    for (const auto& s : specs_)
      if (s.key == key) throw std::logic_error("option '" + key + "' declared twice");
  }
  std::deque<OptionSpec> specs_;
  std::vector<std::function<void(T&, const Options&)>> setters_;
  std::vector<std::function<void(T&)>> defaulters_;
  std::vector<std::function<std::string(const T&)>> checks_;
};

}  // namespace psbench
