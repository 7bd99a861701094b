// One registry mechanism for components, commands and trainers; a name registered twice is an error.
#include <catch2/catch.hpp>

#include "cli/command.h"
#include "cli/train.h"
#include "core/errors.h"
#include "core/registry.h"
#include "metrics/metric.h"
#include "operators/operator.h"

using namespace psbench;
using Catch::Matchers::Contains;

namespace {
struct Thing {
  std::string name;
  std::string description;
  int value = 0;
};
}  // namespace

TEST_CASE("a duplicate registry name is recorded, reported by get and at start-up, and the first entry kept",
          "[registry]") {
  auto& errors = registration_errors();
  const size_t before = errors.size();
  // Registered at run time (not from static initialisers) so that only this test's process sees them.
  NamedRegistrar<Thing> first({"widget", "the first widget", 1});
  NamedRegistrar<Thing> other({"gadget", "a gadget", 2});
  CHECK(errors.size() == before);
  NamedRegistrar<Thing> again({"widget", "a copy-pasted widget", 3});
  REQUIRE(errors.size() == before + 1);
  CHECK_THAT(errors.back(), Contains("'widget' is registered twice") && Contains("the first widget") &&
                                Contains("a copy-pasted widget"));
  const auto& r = NamedRegistry<Thing>::instance();
  CHECK(r.entries().size() == 2);
  CHECK(r.find("widget")->value == 1);
  CHECK_THROWS_WITH(r.get("widget", "thing"), Contains("thing 'widget' is registered twice"));
  CHECK(r.get("gadget", "thing").value == 2);
  CHECK_THROWS_WITH(r.get("gizmo", "thing"), Contains("unknown thing 'gizmo' (known: gadget, widget)"));
  // What `psbench` runs before any command: one line, a ConfigError (exit code 2).
  CHECK_THROWS_AS(check_registrations(), ConfigError);
  CHECK_THROWS_WITH(check_registrations(), Contains("registry: 'widget' is registered twice"));
  errors.resize(before);  // leave the process-wide list as it was for later tests in this process
}

TEST_CASE("commands, trainers and components share the registry and their names are unique", "[registry]") {
  CHECK_NOTHROW(check_registrations());
  for (const char* c : {"run", "report", "evaluate", "list", "train", "fd", "sample", "show-task"})
    CHECK(CommandRegistry::instance().has(c));
  for (const char* t : {"classifier", "denoiser", "consistency"}) CHECK(TrainerRegistry::instance().has(t));
  CHECK(TaskRegistry::instance().has("gmm_lowrank"));
  CHECK(MetricRegistry::instance().has("psnr"));
}
