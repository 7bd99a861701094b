// Options declared once: one declaration gives the specs, the defaults and the typed struct, with
// enums for choices, shared groups, cross-field checks, and the same validation for values given in code.
#include <catch2/catch.hpp>

#include "core/errors.h"
#include "core/option_schema.h"

using namespace psbench;

namespace {

struct Group {
  int64_t chains = 0;
  double threshold = 0;
};

enum class Mode { Fast, Exact };

struct Demo {
  Group group;
  double step = 0;
  Mode mode = Mode::Exact;
  bool verbose = false;
  int64_t adapt = 0;
};

const OptionSchema<Group>& group_schema() {
  static const auto s = [] {
    OptionSchema<Group> s;
    s.integer(&Group::chains, "chains", 4, "chains").at_least(1);
    s.real(&Group::threshold, "threshold", 1e4, "divergence").above(0);
    return s;
  }();
  return s;
}

OptionSchema<Demo> demo_schema() {
  OptionSchema<Demo> s;
  s.group(&Demo::group, group_schema());
  s.real(&Demo::step, "step", 0.5, "step size").above(0).at_most(1);
  s.choice(&Demo::mode, "mode", Mode::Fast, {{"fast", Mode::Fast}, {"exact", Mode::Exact}}, "mode");
  s.boolean(&Demo::verbose, "verbose", false, "talk");
  s.integer(&Demo::adapt, "adapt", 0, "adaptation steps").at_least(0);
  s.check([](const Demo& d) { return d.adapt > d.group.chains ? std::string("adapt exceeds chains") : std::string(); });
  return s;
}

}  // namespace

TEST_CASE("A schema declares specs, defaults and parsing in one place", "[options]") {
  const auto s = demo_schema();
  std::vector<std::string> keys;
  for (const auto& spec : s.specs()) keys.push_back(spec.key);
  CHECK(keys == std::vector<std::string>{"chains", "threshold", "step", "mode", "verbose", "adapt"});
  const auto d = s.defaults();
  CHECK(d.group.chains == 4);
  CHECK(d.step == 0.5);
  CHECK(d.mode == Mode::Fast);
  // Defaults through resolve_options equal the struct's defaults.
  const auto r = s.parse(resolve_options("demo", s.specs(), {}));
  CHECK(r.group.chains == d.group.chains);
  CHECK(r.group.threshold == d.group.threshold);
  CHECK(r.mode == d.mode);
  // Given values, a choice parsed into its enum.
  const auto g = s.parse(resolve_options("demo", s.specs(), {{"chains", int64_t{7}}, {"mode", std::string("exact")},
                                                            {"step", int64_t{1}}, {"adapt", int64_t{3}}}));
  CHECK(g.group.chains == 7);
  CHECK(g.mode == Mode::Exact);
  CHECK(g.step == 1.0);  // an integer given for a real option is the same number
  CHECK(g.adapt == 3);
}

TEST_CASE("Values given in code are validated like YAML values, and cross-field checks run at parse time",
          "[options]") {
  const auto s = demo_schema();
  CHECK_THROWS_AS(resolve_options("demo", s.specs(), {{"stepp", 0.1}}), ConfigError);               // unknown key
  CHECK_THROWS_AS(resolve_options("demo", s.specs(), {{"step", 2.0}}), ConfigError);                // out of range
  CHECK_THROWS_AS(resolve_options("demo", s.specs(), {{"step", 0.0}}), ConfigError);                // exclusive bound
  CHECK_THROWS_AS(resolve_options("demo", s.specs(), {{"chains", 2.5}}), ConfigError);              // wrong type
  CHECK_THROWS_AS(resolve_options("demo", s.specs(), {{"mode", std::string("slow")}}), ConfigError);  // not a choice
  try {
    s.parse(resolve_options("demo", s.specs(), {{"chains", int64_t{2}}, {"adapt", int64_t{3}}}));
    FAIL("cross-field check did not fire");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == "demo: adapt exceeds chains");
  }
}

TEST_CASE("Declaring an option key twice is a programming error", "[options]") {
  OptionSchema<Demo> s;
  s.real(&Demo::step, "step", 0.5, "");
  CHECK_THROWS_AS(s.real(&Demo::step, "step", 0.5, ""), std::logic_error);
  OptionSchema<Demo> t;
  t.integer(&Demo::adapt, "chains", 0, "");
  CHECK_THROWS_AS(t.group(&Demo::group, group_schema()), std::logic_error);  // the group declares chains too
}
