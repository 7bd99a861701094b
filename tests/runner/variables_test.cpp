// ${NAME} variables in experiment files (runner/variables.h): command-line values, the environment,
// defaults, comments left alone, and one-line errors naming file, line and variable.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "core/errors.h"
#include "runner/experiment.h"
#include "runner/variables.h"
#include "test_util.h"

using namespace psbench;

TEST_CASE("experiment variables expand from --var, then the environment, then a default", "[runner]") {
  ::setenv("PSBENCH_TEST_VAR_ENV", "from-env", 1);
  ::unsetenv("PSBENCH_TEST_VAR_UNSET");
  const std::string text =
      "a: ${X}\n"
      "b: \"${PSBENCH_TEST_VAR_ENV}/m.pt\"  # ${NOT_EXPANDED_IN_COMMENT}\n"
      "c: ${PSBENCH_TEST_VAR_UNSET:-fallback}\n"
      "# ${ALSO_A_COMMENT}\n"
      "d: x#${X}\n";  // '#' inside a word is not a comment
  const auto out = expand_variables(text, "f.yaml", {{"X", "cli"}, {"PSBENCH_TEST_VAR_ENV", "cli-wins"}});
  CHECK(out == "a: cli\nb: \"cli-wins/m.pt\"  # ${NOT_EXPANDED_IN_COMMENT}\nc: fallback\n# ${ALSO_A_COMMENT}\nd: x#cli\n");
  CHECK(expand_variables("b: ${PSBENCH_TEST_VAR_ENV}\n", "f.yaml", {}) == "b: from-env\n");
  ::unsetenv("PSBENCH_TEST_VAR_ENV");
}

TEST_CASE("an unset or malformed experiment variable is a one-line error naming file, line and name", "[runner]") {
  ::unsetenv("PSBENCH_TEST_VAR_UNSET");
  auto message = [](const std::string& text) {
    try {
      expand_variables(text, "exp.yaml", {});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message("a: 1\nb: ${PSBENCH_TEST_VAR_UNSET}\n") ==
        "exp.yaml:2: ${PSBENCH_TEST_VAR_UNSET} is not set (pass --var PSBENCH_TEST_VAR_UNSET=VALUE or set the "
        "environment variable PSBENCH_TEST_VAR_UNSET)");
  CHECK(message("a: ${OPEN\n") == "exp.yaml:1: unterminated variable reference '${OPEN'");
  CHECK(message("a: ${1bad}\n") == "exp.yaml:1: bad variable name '1bad' in '${1bad}' (letters, digits, _)");
  CHECK_THROWS_AS(parse_variable_assignment("novalue"), ConfigError);
  CHECK(parse_variable_assignment("A_1=x=y") == std::make_pair(std::string("A_1"), std::string("x=y")));
}

TEST_CASE("psbench run expands --var in model paths and names an unset variable with exit 2", "[runner][cli]") {
  const std::string dir = psbench::testing::temp_dir("vars");
  const std::string file = dir + "/e.yaml";
  {
    std::ofstream f(file);
    f << "name: v\nseed: 0\nmeasurements: 1\nsamples_per_measurement: 2\n"
         "tasks: [{name: gmm_lowrank, d_y: 2}]\npriors: [{name: gmm, dim: ${PSBENCH_TEST_DIM}}]\n"
         "samplers: [exact]\n";
  }
  ::unsetenv("PSBENCH_TEST_DIM");
  const std::string log = dir + "/log";
  CHECK(psbench::testing::run_cli("run " + file + " --dry-run", log) == 2);
  const std::string text = psbench::testing::read_text(log);
  CHECK(text.find(file + ":6: ${PSBENCH_TEST_DIM} is not set") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(psbench::testing::run_cli("run " + file + " --dry-run --var PSBENCH_TEST_DIM=8", log) == 0);
  CHECK(psbench::testing::read_text(log).find("1 cells valid") != std::string::npos);
}
