// Experiment files: sweeps, stable keys, and errors that name the file, key and value.
#include <catch2/catch.hpp>

#include <set>

#include "core/errors.h"
#include "runner/experiment.h"

using namespace psbench;

namespace {
const char* kBase = R"(
name: t
seed: 3
measurements: 2
samples_per_measurement: 4
tasks:
  - {name: gmm_lowrank, d_y: [1, 2]}
priors:
  - {name: gmm, dim: 8}
samplers:
  - exact
  - {name: noise_langevin, chains: 2, step_size: [0.001, 0.01, 0.1]}
)";

std::string error_of(const std::string& text) {
  try {
    parse_experiment_text(text, "exp.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("Lists are swept and the cartesian product gives the cells", "[experiment]") {
  auto ex = parse_experiment_text(kBase, "exp.yaml");
  CHECK(ex.name == "t");
  CHECK(ex.cells.size() == 2 * (1 + 3));
  std::set<std::string> keys;
  for (const auto& c : ex.cells) keys.insert(c.key());
  CHECK(keys.size() == ex.cells.size());
  // Defaults are resolved into every cell.
  CHECK(ex.cells[0].prior.get_int("grid") == 5);
  CHECK(ex.cells[0].task.get_real("sigma_y") == 0.1);
}

TEST_CASE("Cell keys are stable: independent of key order and of execution-only options at their defaults", "[experiment]") {
  auto a = parse_experiment_text(R"(
name: a
seed: 1
tasks: [{name: gmm_lowrank, d_y: 2, sigma_y: 0.5}]
priors: [{name: gmm, dim: 8}]
samplers: [{name: noise_langevin, step_size: 0.01, chains: 1}]
)", "a.yaml");
  auto b = parse_experiment_text(R"(
name: b
seed: 1
samplers: [{chains: 1, name: noise_langevin, step_size: 1.0e-2, batch_size: 0}]
priors: [{dim: 8, name: gmm}]
tasks: [{sigma_y: 0.50, d_y: 2, name: gmm_lowrank}]
)", "b.yaml");
  REQUIRE(a.cells.size() == 1);
  REQUIRE(b.cells.size() == 1);
  CHECK(a.cells[0].key() == b.cells[0].key());
  // An execution-only option set away from its default enters the key: rows that differ only in it (a
  // timing comparison of batch sizes) are distinct cells, not one cell silently dropped.
  auto timed = parse_experiment_text(R"(
name: b
seed: 1
samplers: [{name: noise_langevin, step_size: 0.01, chains: 1}, {name: noise_langevin, step_size: 0.01, chains: 1, batch_size: 1}]
priors: [{dim: 8, name: gmm}]
tasks: [{sigma_y: 0.50, d_y: 2, name: gmm_lowrank}]
)", "timed.yaml");
  REQUIRE(timed.cells.size() == 2);
  CHECK(timed.cells[0].key() == a.cells[0].key());
  CHECK(timed.cells[1].key() != a.cells[0].key());
  CHECK(timed.cells[1].sampler.canonical().find("batch_size=1") != std::string::npos);
  CHECK(a.cells[0].key() == "" + a.cells[0].key());  // 16 hex digits
  CHECK(a.cells[0].key().size() == 16);
  // Any change to a result-determining option changes the key.
  auto c = parse_experiment_text(R"(
name: a
seed: 2
tasks: [{name: gmm_lowrank, d_y: 2, sigma_y: 0.5}]
priors: [{name: gmm, dim: 8}]
samplers: [{name: noise_langevin, step_size: 0.01, chains: 1}]
)", "a.yaml");
  CHECK(c.cells[0].key() != a.cells[0].key());
}

TEST_CASE("The measurement seed ignores the sampler", "[experiment]") {
  auto ex = parse_experiment_text(kBase, "exp.yaml");
  std::set<uint64_t> seeds_d1;
  for (const auto& c : ex.cells)
    if (c.task.get_int("d_y") == 1) seeds_d1.insert(c.measurement_seed(0, true));
  CHECK(seeds_d1.size() == 1);
  CHECK(ex.cells[0].measurement_seed(0, true) != ex.cells[0].measurement_seed(1, true));
}

TEST_CASE("Bad experiment files give one-line errors naming file, key and value", "[experiment]") {
  struct Case { std::string text, expect; };
  const std::vector<Case> cases = {
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [{name: noise_langevin, step_sise: 0.1}]\n",
       "exp.yaml: samplers[0].step_sise: unknown option"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [{name: noise_langevin, step_size: -1}]\n",
       "exp.yaml: samplers[0].step_size: value -1 out of range"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [{name: noise_langevin, chains: two}]\n",
       "exp.yaml: samplers[0].chains: 'two' is not an integer"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [{name: gmm, dim: 2.5}]\nsamplers: [exact]\n",
       "exp.yaml: priors[0].dim: '2.5' is not an integer"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [{name: gmm, weights: heavy}]\nsamplers: [exact]\n",
       "exp.yaml: priors[0].weights: 'heavy' is not one of random, uniform"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [dps9]\n",
       "exp.yaml: samplers[0].name: unknown sampler 'dps9'"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [exact]\nmeasurments: 3\n",
       "exp.yaml: measurments: unknown key"},
      {"name: t\nseed: -4\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [exact]\n", "exp.yaml: seed: value -4 out of range"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\n", "exp.yaml: samplers: missing"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [{name: noise_langevin, step_size: []}]\n",
       "exp.yaml: samplers[0].step_size: empty list"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [exact]\nmetrics: [{name: sliced_wasserstein, projections: [1, 2]}]\n",
       "exp.yaml: metrics[0].projections: cannot be swept"},
      {"name: t\nseed: 1\ntasks: [gmm_lowrank\n", "exp.yaml:"},
      {"name: t\nseed: 1\ntasks: [{name: gmm_lowrank, sigma_y: .nan}]\npriors: [gmm]\nsamplers: [exact]\n",
       "exp.yaml: tasks[0].sigma_y"},
  };
  for (const auto& c : cases) {
    const auto msg = error_of(c.text);
    INFO(c.text << "\n-> " << msg);
    CHECK(msg.rfind(c.expect, 0) == 0);
    CHECK(msg.find('\n') == std::string::npos);
  }
}
