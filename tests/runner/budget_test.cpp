// budget_mode: set (README "NFE budgets"): every sampler fits its schedule to the budget by its own rule;
// planned NFE, the NFE counted while running (nfe/* arrays of run_cell) and the budget agree.
#include <catch2/catch.hpp>

#include <functional>

#include "core/errors.h"
#include "nn/karras.h"
#include "runner/runner.h"
#include "samplers/sampler.h"
#include "store/schema.h"

using namespace psbench;

namespace {

// One NFE "unit" of a sampler's schedule per measurement (the documented rules): planned NFE is the largest
// multiple of it not above the budget.
struct BudgetCase {
  std::string sampler;  // YAML entry
  std::function<int64_t(const Prior&, int64_t k)> granularity;
};

std::vector<BudgetCase> budget_cases() {
  auto per_run = [](int64_t c) { return [c](const Prior&, int64_t k) { return k * c; }; };
  auto cm = [](int64_t extra) {
    return [extra](const Prior& p, int64_t k) { return k * (p.consistency()->consistency_evaluations() + extra); };
  };
  auto chains = [](int64_t n) { return [n](const Prior& p, int64_t) { return n * p.generator()->evaluations_per_call(); }; };
  return {
      {"{name: dps}", per_run(1)},
      {"{name: dps, x0_estimate: consistency}", cm(1)},
      {"{name: dps, x0_estimate: consistency, convention: cps}", cm(0)},
      {"{name: lgd, mc_draws: 3}", per_run(1)},
      {"{name: pigdm}", per_run(1)},
      {"{name: ddrm}", per_run(1)},
      {"{name: ddnm}", per_run(1)},
      {"{name: ddnm_plus, convention: paper}", per_run(1)},
      {"{name: diffpir}", per_run(1)},
      {"{name: reddiff}", per_run(1)},
      // PnP-DM: 4 chains, each iteration one evaluation per grid level below rho (4 of a 20-level grid).
      {"{name: pnp_dm, chains: 4, thinning: 1, rho: 0.05, num_steps: 20}",
       [](const Prior& p, int64_t) {
         const auto grid = karras_sigmas(20, p.denoiser()->sigma_min(), p.denoiser()->sigma_max());
         int64_t c = 0;
         for (size_t i = 0; i + 1 < grid.size(); ++i) c += grid[i] < 0.05 ? 1 : 0;
         return 4 * c;
       }},
      {"{name: daps, ode_steps: 2, langevin_steps: 3}", per_run(2)},
      {"{name: daps, ode_steps: 2, ode_solver: heun, langevin_steps: 3}", per_run(3)},
      {"{name: almc, warm_start_steps: 20}", per_run(1)},
      {"{name: noise_langevin, chains: 2, warm_start_steps: 30, burn_in: 10, step_size: 1.0e-3}", chains(2)},
      {"{name: noise_mala, chains: 2, warm_start_steps: 30, burn_in: 10, adapt_steps: 10}", chains(2)},
      {"{name: noise_pcn, chains: 4, warm_start_steps: 0, burn_in: 5}", chains(4)},
      // SMC: K / samples_per_run = 2 runs of P particles, one evaluation per particle and level (TDS: P = 4 and a
      // soft twist, so that no run loses all its particles; see baselines/tds.cpp).
      {"{name: mcgdiff, particles: 2, samples_per_run: 2}", per_run(1)},
      {"{name: fps, particles: 2, samples_per_run: 2}", per_run(1)},
      {"{name: tds, particles: 4, samples_per_run: 2, twist_scale: 0.1}", per_run(2)},
  };
}

std::string budget_file(const std::string& sampler, const std::string& budgets, const std::string& per) {
  return "name: budget\nseed: 3\nmeasurements: 1\nsamples_per_measurement: 4\nbudget_mode: set\nnfe_budget_per: " +
         per + "\nnfe_budget: " + budgets + "\nmetrics: [mse_to_truth]\ntasks: [{name: gmm_lowrank, d_y: 2, sigma_y: 0.1}]\n"
         "priors: [{name: gmm, dim: 8, ode_steps: 4}]\nsamplers: [" + sampler + "]\n";
}

int64_t counted(const CellRecord& rec) {
  int64_t total = 0;
  for (const char* name : {schema::kNfeWarmupForward, schema::kNfeWarmupForwardBackward, schema::kNfeChainForward,
                           schema::kNfeChainForwardBackward})
    total += rec.arrays.at(name)[0].item<int64_t>();
  return total;
}

}  // namespace

TEST_CASE("In budget_mode set every sampler plans and counts the budget, or the largest schedule below it",
          "[runner][budget]") {
  const auto c = GENERATE(from_range(budget_cases()));
  const std::string per = GENERATE(as<std::string>{}, "measurement", "sample");
  // Per measurement 100, 224 (a multiple of every unit but Heun-DAPS' 12) and 336; per sample a quarter (K = 4).
  const std::vector<int64_t> budgets = per == "sample" ? std::vector<int64_t>{25, 56, 84} : std::vector<int64_t>{100, 224, 336};
  auto ex = parse_experiment_text(budget_file(c.sampler, "[" + std::to_string(budgets[0]) + ", " +
                                                             std::to_string(budgets[1]) + ", " + std::to_string(budgets[2]) + "]",
                                              per),
                                  "budget.yaml");
  REQUIRE(ex.cells.size() == 3);
  PriorCache priors;
  const auto plans = validate_experiment(ex, priors);
  for (size_t i = 0; i < ex.cells.size(); ++i) {
    const auto& spec = ex.cells[i];
    const Prior& prior = priors.get(spec.prior, spec.seed);
    const int64_t b = spec.budget_per_measurement();
    const int64_t unit = c.granularity(prior, spec.samples_per_measurement);
    const int64_t expected = b / unit * unit;
    INFO(c.sampler << " " << spec.describe_budget() << " (" << b << " per measurement), unit " << unit << ": "
                   << plans[i].budget_rule);
    CHECK(plans[i].planned_nfe == expected);
    if (b % unit == 0) CHECK(plans[i].planned_nfe == b);
    auto rec = run_cell(spec, priors, RunOptions{});
    REQUIRE(rec.attr(schema::kStatus) == "ok");
    CHECK(rec.attr(schema::kPlannedNfe) == std::to_string(expected));
    CHECK(counted(rec) == expected);
    CHECK(rec.attr(schema::kBudgetRule) == plans[i].budget_rule);
    CHECK(!rec.attr(schema::kBudgetSampler).empty());
  }
}

TEST_CASE("Samplers without network evaluations ignore a budget", "[runner][budget]") {
  const std::string sampler = GENERATE(as<std::string>{}, "exact", "pseudo_inverse");
  auto ex = parse_experiment_text(budget_file(sampler, "50", "sample"), "free.yaml");
  PriorCache priors;
  CHECK(validate_experiment(ex, priors)[0].planned_nfe == 0);
  auto rec = run_cell(ex.cells[0], priors, RunOptions{});
  CHECK(rec.attr(schema::kStatus) == "ok");
  CHECK(counted(rec) == 0);
}

TEST_CASE("A budget below a sampler's smallest schedule is a config error naming file, key, value and sampler",
          "[runner][budget]") {
  // DPS-CM: one step of 4 runs costs 4 x (7 + 1) = 32; noise-space Langevin's chain alone 2 x 7 x (1 + 2) = 42.
  struct TooSmall {
    std::string sampler, budget;
  };
  const auto t = GENERATE(TooSmall{"{name: dps, x0_estimate: consistency}", "31"},
                          TooSmall{"{name: noise_langevin, chains: 2}", "41"}, TooSmall{"{name: almc}", "3"},
                          TooSmall{"{name: daps, ode_steps: 3}", "11"});
  auto ex = parse_experiment_text(budget_file(t.sampler, t.budget, "measurement"), "small.yaml");
  PriorCache priors;
  try {
    validate_experiment(ex, priors);
    FAIL("no error for " << t.sampler << " at nfe_budget " << t.budget);
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("small.yaml") != std::string::npos);
    CHECK(msg.find("nfe_budget=" + t.budget) != std::string::npos);
    CHECK(msg.find("sampler " + ex.cells[0].sampler.component()) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

TEST_CASE("budget_mode and nfe_budget_per are validated and enter cell keys only when not the defaults",
          "[runner][budget]") {
  const std::string base =
      "name: k\nseed: 1\nsamples_per_measurement: 4\ntasks: [{name: gmm_lowrank, d_y: 2}]\n"
      "priors: [{name: gmm, dim: 8, ode_steps: 4}]\nsamplers: [{name: dps, steps: 10}]\nnfe_budget: 40\n";
  auto cap = parse_experiment_text(base, "k.yaml");
  auto cap_explicit = parse_experiment_text(base + "budget_mode: cap\nnfe_budget_per: measurement\n", "k.yaml");
  auto set = parse_experiment_text(base + "budget_mode: set\n", "k.yaml");
  auto per_sample = parse_experiment_text(base + "nfe_budget_per: sample\n", "k.yaml");
  // A file without the new keys keeps the canonical form (and key) it had.
  CHECK(cap.cells[0].canonical().find("budget_mode") == std::string::npos);
  CHECK(cap.cells[0].canonical().find("nfe_budget_per") == std::string::npos);
  CHECK(cap.cells[0].key() == cap_explicit.cells[0].key());
  CHECK(set.cells[0].key() != cap.cells[0].key());
  CHECK(per_sample.cells[0].key() != cap.cells[0].key());
  // The stored configuration reads back with the mode.
  auto back = parse_cell_yaml(set.cells[0].yaml());
  CHECK(back.key() == set.cells[0].key());
  // Cap per sample: 10 steps x 4 runs = 10 per sample.
  PriorCache priors;
  auto fits = parse_experiment_text(
      "name: k\nseed: 1\nsamples_per_measurement: 4\ntasks: [{name: gmm_lowrank, d_y: 2}]\n"
      "priors: [{name: gmm, dim: 8, ode_steps: 4}]\nsamplers: [{name: dps, steps: 10}]\nnfe_budget_per: sample\n"
      "nfe_budget: [10, 9]\n",
      "k.yaml");
  validate_experiment(Experiment{fits.name, fits.path, {fits.cells[0]}}, priors);
  CHECK_THROWS_AS(validate_experiment(Experiment{fits.name, fits.path, {fits.cells[1]}}, priors), ConfigError);
  CHECK_THROWS_AS(parse_experiment_text(base + "budget_mode: fit\n", "k.yaml"), ConfigError);
  CHECK_THROWS_AS(parse_experiment_text(base + "nfe_budget_per: chain\n", "k.yaml"), ConfigError);
  auto no_budget = base.substr(0, base.find("nfe_budget")) + "budget_mode: set\nnfe_budget: [40, 0]\n";
  try {
    parse_experiment_text(no_budget, "k.yaml");
    FAIL("budget 0 accepted in budget_mode set");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("nfe_budget[1]") != std::string::npos);
  }
}
