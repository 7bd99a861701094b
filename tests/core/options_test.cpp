#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include "core/errors.h"
#include "core/options.h"

using namespace psbench;

TEST_CASE("Option parsing is typed and range-checked, never clamped", "[options]") {
  auto spec = OptionSpec::real("step_size", 1e-4, "tau").above(0).at_most(1);
  CHECK(std::get<double>(parse_option(spec, YAML::Load("2.5e-3"), "f: k")) == 2.5e-3);
  CHECK_THROWS_AS(parse_option(spec, YAML::Load("0"), "f: k"), ConfigError);
  CHECK_THROWS_AS(parse_option(spec, YAML::Load("1.5"), "f: k"), ConfigError);
  CHECK_THROWS_AS(parse_option(spec, YAML::Load("abc"), "f: k"), ConfigError);
  CHECK_THROWS_AS(parse_option(spec, YAML::Load("[1]"), "f: k"), ConfigError);
  auto ispec = OptionSpec::integer("n", 1, "").at_least(1);
  CHECK(std::get<int64_t>(parse_option(ispec, YAML::Load("12"), "f: n")) == 12);
  CHECK_THROWS_AS(parse_option(ispec, YAML::Load("12.0"), "f: n"), ConfigError);
  auto bspec = OptionSpec::boolean("b", false, "");
  CHECK(std::get<bool>(parse_option(bspec, YAML::Load("true"), "f: b")));
  CHECK_THROWS_AS(parse_option(bspec, YAML::Load("maybe"), "f: b"), ConfigError);
}

TEST_CASE("Canonical values round-trip", "[options]") {
  for (double v : {0.1, 1e-7, 80.0, 1.0 / 3.0, 6.02214076e23}) CHECK(std::stod(format_value(v)) == v);
  CHECK(format_value(80.0) == "80");
  CHECK(format_value(0.0001) == "0.0001");
}

TEST_CASE("An option added later stays out of the key at its default and enters it when set", "[options]") {
  const std::vector<OptionSpec> specs{OptionSpec::real("step", 1.0, ""),
                                      OptionSpec::choice("frame", "ve", {"ve", "vp"}, "").added_later()};
  const auto at_default = resolve_options("s", specs, {{"step", 2.0}});
  CHECK(at_default.canonical() == "s{step=2}");  // the key a file written before `frame` existed has
  CHECK(at_default.get_string("frame") == "ve");
  const auto set = resolve_options("s", specs, {{"step", 2.0}, {"frame", std::string("vp")}});
  CHECK(set.canonical() == "s{frame=vp,step=2}");
}
