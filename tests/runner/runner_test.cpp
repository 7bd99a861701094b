// End to end through the CLI and the HDF5 store: determinism, shared measurements, exit codes,
// atomic cells and resume.
#include <catch2/catch.hpp>

#include <ATen/Parallel.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include "core/threads.h"
#include "runner/runner.h"
#include "samplers/driver.h"
#include "store/result_store.h"
#include "store/schema.h"
#include "test_util.h"

using namespace psbench;
using psbench::testing::read_text;
using psbench::testing::run_cli;
using psbench::testing::temp_dir;

namespace {
std::map<std::string, CellRecord> by_sampler_step(const std::vector<CellRecord>& cells) {
  std::map<std::string, CellRecord> out;
  for (const auto& c : cells) {
    const auto& cfg = c.attr("config");
    auto pos = cfg.find("step_size: ");
    std::string tag = cfg.find("name: exact") != std::string::npos ? "exact" : cfg.substr(pos + 11, cfg.find('\n', pos) - pos - 11);
    out[tag] = c;
  }
  return out;
}
}  // namespace

TEST_CASE("Same seed gives identical stored results and every sampler sees the same y", "[runner][cli]") {
  const auto dir = temp_dir("determinism");
  const std::string a = dir + "/a.h5", b = dir + "/b.h5";
  REQUIRE(run_cli("run experiments/tests/tiny.yaml --out " + a + " --threads 2", dir + "/a.log") == 0);
  REQUIRE(run_cli("run experiments/tests/tiny.yaml --out " + b + " --threads 2", dir + "/b.log") == 0);
  auto ca = by_sampler_step(Hdf5Store(a, "r").read_all());
  auto cb = by_sampler_step(Hdf5Store(b, "r").read_all());
  REQUIRE(ca.size() == 3);
  REQUIRE(cb.size() == 3);
  for (const auto& [tag, cell] : ca) {
    INFO("cell " << tag);
    const auto& other = cb.at(tag);
    CHECK(cell.key == other.key);
    for (const auto& [name, arr] : cell.arrays) {
      // Wall times and peak memory are measurements of the machine, not results.
      if (name.rfind(schema::kTimeGroup, 0) == 0 || name.rfind(schema::kResourcesGroup, 0) == 0) continue;
      INFO(name);
      REQUIRE(other.arrays.count(name));
      CHECK(at::equal(arr, other.arrays.at(name)));
    }
  }
  // The measurement depends on the task and prior only: identical x* and y across samplers.
  CHECK(at::equal(ca.at("exact").arrays.at("y"), ca.at("0.001").arrays.at("y")));
  CHECK(at::equal(ca.at("exact").arrays.at("x_true"), ca.at("0.001").arrays.at("x_true")));
  CHECK(at::equal(ca.at("exact").arrays.at("y"), ca.at("100").arrays.at("y")));
  // The two measurements differ from each other.
  const auto& y = ca.at("exact").arrays.at("y");
  CHECK_FALSE(at::equal(y[0], y[1]));
  // Metrics present for ok cells; the diverging step size is recorded as such, without numbers.
  CHECK(ca.at("0.001").attr("status") == "ok");
  CHECK(ca.at("0.001").arrays.count("metrics/sliced_wasserstein"));
  CHECK(ca.at("100").attr("status") == "diverged");
  CHECK(ca.at("100").attr("message").find("diverged") != std::string::npos);
  for (const auto& [name, arr] : ca.at("100").arrays) CHECK(name.rfind("metrics/", 0) != 0);
  // Provenance is stored with every cell.
  for (const char* k : {"psbench_version", "git_revision", "libtorch_version", "threads", "device", "build_type", "config"})
    CHECK(ca.at("exact").has_attr(k));
  CHECK(ca.at("exact").attr("threads") == "2");

  // The report prints one row per cell.
  REQUIRE(run_cli("report " + a, dir + "/report.md") == 0);
  auto report = read_text(dir + "/report.md");
  CHECK(report.find("sliced_wasserstein") != std::string::npos);
  CHECK(report.find("diverged") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("A cell with measurements that lost every chain is scored over the others", "[runner][cli]") {
  const auto dir = temp_dir("partial_divergence");
  const std::string out = dir + "/p.h5", again = dir + "/q.h5";
  REQUIRE(run_cli("run experiments/tests/partial_divergence.yaml --out " + out + " --threads 1", dir + "/run.log") == 0);
  auto cells = Hdf5Store(out, "r").read_all();
  REQUIRE(cells.size() == 1);
  const auto& c = cells.front();
  CHECK(c.attr(schema::kStatus) == "diverged");
  const auto& lost = c.arrays.at(schema::kChainsDiverged);
  const int64_t chains = std::stoll(c.attr(schema::kChains));
  REQUIRE(chains == 1);
  std::vector<int64_t> expect;
  for (int64_t m = 0; m < lost.numel(); ++m)
    if (lost[m].item<int64_t>() < chains) expect.push_back(m);
  // The step size is chosen so that the cell is partly lost: some measurements scored, some not.
  REQUIRE(expect.size() > 0);
  REQUIRE(static_cast<int64_t>(expect.size()) < lost.numel());
  CHECK(c.attr(schema::kMessage).find(std::to_string(lost.numel() - static_cast<int64_t>(expect.size())) + " of " +
                                      std::to_string(lost.numel()) + " measurements have no samples") == 0);
  REQUIRE(c.arrays.count(schema::kScoredMeasurements));
  const auto scored = c.arrays.at(schema::kScoredMeasurements);
  CHECK(std::vector<int64_t>(scored.data_ptr<int64_t>(), scored.data_ptr<int64_t>() + scored.numel()) == expect);
  const auto& rmse = c.arrays.at(std::string(schema::kMetricsGroup) + "posterior_mean_rmse");
  CHECK(rmse.numel() == static_cast<int64_t>(expect.size()));
  CHECK(c.arrays.at(std::string(schema::kMetricsGroup) + "sliced_wasserstein").numel() == static_cast<int64_t>(expect.size()));
  // Each value belongs to the measurement scored_measurements names: re-scoring the stored samples
  // measurement by measurement (evaluate) gives the same numbers.
  REQUIRE(run_cli("evaluate " + out + " -o " + again, dir + "/evaluate.log") == 0);
  auto rescored = Hdf5Store(again, "r").read_all();
  REQUIRE(rescored.size() == 1);
  for (const auto& [name, arr] : c.arrays) {
    if (name.rfind(schema::kMetricsGroup, 0) != 0 && name != schema::kScoredMeasurements) continue;
    INFO(name);
    REQUIRE(rescored.front().arrays.count(name));
    CHECK(at::allclose(arr, rescored.front().arrays.at(name)));
  }
  // And by hand: mse_to_truth of the i-th value is that of measurement scored_measurements[i].
  const auto& mse = c.arrays.at(std::string(schema::kMetricsGroup) + "mse_to_truth");
  for (size_t i = 0; i < expect.size(); ++i) {
    const auto samples = c.arrays.at(schema::kSamplesGroup + schema::measurement_name(expect[i])).to(at::kDouble);
    const auto x = c.arrays.at(schema::kXTrue)[expect[i]].to(at::kDouble);
    INFO("measurement " << expect[i]);
    CHECK(mse[static_cast<int64_t>(i)].item<double>() == Approx((samples - x).pow(2).mean().item<double>()).epsilon(1e-4));
  }
  REQUIRE(run_cli("report " + out, dir + "/report.md") == 0);
  CHECK(read_text(dir + "/report.md").find("measurements have no samples") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("Resuming skips complete cells and partial cells are never read as complete", "[runner][store]") {
  const auto dir = temp_dir("resume");
  const std::string out = dir + "/r.h5";
  REQUIRE(run_cli("run experiments/tests/tiny.yaml --out " + out, dir + "/1.log") == 0);
  REQUIRE(run_cli("run experiments/tests/tiny.yaml --out " + out, dir + "/2.log") == 0);
  CHECK(read_text(dir + "/2.log").find("3 already complete") != std::string::npos);

  // Simulate a crash in the middle of writing a cell: a partial group left in the file.
  {
    hid_t f = H5Fopen(out.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    hid_t g = H5Gcreate2(f, "/cells/.partial-deadbeefdeadbeef", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
  }
  Hdf5Store reader(out, "r");
  CHECK(reader.complete_keys().size() == 3);
  CHECK(reader.read_all().size() == 3);
  { Hdf5Store writer(out, "a"); }  // reopening for writing discards the leftover
  hid_t f = H5Fopen(out.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  CHECK(H5Lexists(f, "/cells/.partial-deadbeefdeadbeef", H5P_DEFAULT) == 0);
  H5Fclose(f);
  std::filesystem::remove_all(dir);
}

TEST_CASE("Bad input exits with code 2 and a one-line message naming the key", "[runner][cli]") {
  const auto dir = temp_dir("badinput");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  auto bad_key = write("bad_key.yaml",
                       "name: t\nseed: 1\ntasks: [gmm_lowrank]\npriors: [gmm]\nsamplers: [{name: noise_langevin, "
                       "stepsize: 0.1}]\n");
  CHECK(run_cli("run " + bad_key + " --out " + dir + "/x.h5", dir + "/log1") == 2);
  auto log = read_text(dir + "/log1");
  CHECK(log.find("samplers[0].stepsize") != std::string::npos);
  CHECK(log.find(bad_key) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir + "/x.h5"));  // nothing written on bad input

  auto bad_value = write("bad_value.yaml",
                         "name: t\nseed: 1\ntasks: [{name: gmm_lowrank, d_y: 0}]\npriors: [gmm]\nsamplers: [exact]\n");
  CHECK(run_cli("run " + bad_value, dir + "/log2") == 2);
  CHECK(read_text(dir + "/log2").find("tasks[0].d_y: value 0 out of range") != std::string::npos);

  // Cross-option constraints are checked before any work.
  auto indivisible = write("indivisible.yaml",
                           "name: t\nseed: 1\nsamples_per_measurement: 5\ntasks: [gmm_lowrank]\npriors: [gmm]\n"
                           "samplers: [{name: noise_langevin, chains: 2}]\n");
  CHECK(run_cli("run " + indivisible + " --out " + dir + "/y.h5", dir + "/log3") == 2);
  CHECK(read_text(dir + "/log3").find("not a multiple of chains=2") != std::string::npos);
  auto budget = write("budget.yaml",
                      "name: t\nseed: 1\nnfe_budget: 100\ntasks: [gmm_lowrank]\npriors: [gmm]\n"
                      "samplers: [{name: noise_langevin}]\n");
  CHECK(run_cli("run " + budget + " --out " + dir + "/z.h5", dir + "/log4") == 2);
  CHECK(read_text(dir + "/log4").find("nfe_budget=100") != std::string::npos);

  CHECK(run_cli("run " + dir + "/missing.yaml", dir + "/log5") == 2);
  CHECK(run_cli("report " + dir + "/missing.h5", dir + "/log6") == 2);
  CHECK(run_cli("frobnicate", dir + "/log7") == 2);
  CHECK(run_cli("run experiments/tests/tiny.yaml --threads 0", dir + "/log8") == 2);
  CHECK(run_cli("run experiments/tests/tiny.yaml --threads 2x", dir + "/log9") == 2);
  CHECK(read_text(dir + "/log9").find("--threads must be an integer >= 1 or auto, got '2x'") != std::string::npos);
  for (const char* l : {"/log1", "/log2", "/log3", "/log4", "/log5", "/log6", "/log7", "/log8", "/log9"}) {
    auto text = read_text(dir + l);
    INFO(l << ": " << text);
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  }
  CHECK(run_cli("--version", dir + "/v") == 0);
  CHECK(run_cli("list", dir + "/list") == 0);
  auto list = read_text(dir + "/list");
  for (const char* name : {"gmm_lowrank", "gmm", "noise_langevin", "exact", "sliced_wasserstein", "step_size"})
    CHECK(list.find(name) != std::string::npos);
  for (const char* cmd : {"run", "report", "list"}) CHECK(run_cli(std::string(cmd) + " --help", dir + "/h") == 0);
  std::filesystem::remove_all(dir);
}

namespace {
// A kernel that holds `megabytes` MiB of touched memory in its state: the cell's peak resident memory
// must show it. With chunked: true the memory is 1 MiB tensors, which malloc serves from its heap (below
// psbench's 32 MiB mmap threshold) and keeps after they are freed.
struct Allocates {
  struct Options {
    int64_t megabytes = 0;
    bool chunked = false;
    static const OptionSchema<Options>& schema() {
      static const auto s = [] {
        OptionSchema<Options> s;
        s.integer(&Options::megabytes, "megabytes", 0, "MiB held during the run").at_least(0);
        s.boolean(&Options::chunked, "chunked", false, "hold it as 1 MiB tensors instead of one block");
        return s;
      }();
      return s;
    }
  };
  struct State {
    at::Tensor x;
    std::vector<at::Tensor> ballast;
    void keep_rows(const at::Tensor& rows) { x = keep_defined_rows(x, rows); }
  };
  Options o;
  explicit Allocates(Options opts) : o(opts) {}
  Needs needs() const { return {}; }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return n; }
  std::vector<Phase> phases(int64_t, const Prior&) const { return {Phase::of("hold", 1, false, Keep::Last)}; }
  int64_t planned_nfe(int64_t, const Prior&) const { return 0; }
  State init(const StepContext& ctx) const {
    State s{at::zeros({ctx.rng.rows(), 8}, at::kDouble), {}};
    const int64_t per = o.chunked ? 1 : std::max<int64_t>(o.megabytes, 1);
    for (int64_t held = 0; held < o.megabytes; held += per)
      s.ballast.push_back(at::ones({per * (1 << 20) / 8}, at::kDouble));
    return s;
  }
  State enter(State s, const StepContext&) const { return s; }
  Step<State> step(State s, const StepContext&) const { return {std::move(s), {}}; }
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext&) const { return at::ones({s.x.size(0)}, at::kBool); }
  std::string divergence(const StepContext&) const { return ""; }
};
SamplerRegistrar reg_allocates(kernel_entry<Allocates>("test_allocates", "holds a known amount of memory (runner test)"));
}  // namespace

TEST_CASE("threads auto gives a cell one thread below 4 chains per network call and every core from 4", "[runner][resources]") {
  auto ex = parse_experiment_text(R"(
name: auto_threads
seed: 1
measurements: 1
samples_per_measurement: [2, 8]
metrics: [mse_to_truth]
tasks: [{name: gmm_lowrank, d_y: 2, sigma_y: 0.1}]
priors: [{name: gmm, dim: 8, ode_steps: 4}]
samplers:
  - {name: test_allocates, batch_size: [0, 2]}
)", "inline.yaml");
  PriorCache priors;
  validate_experiment(ex, priors);
  REQUIRE(ex.cells.size() == 4);
  RunOptions opts;
  opts.threads = 0;
  opts.auto_cores = 3;
  std::map<std::string, std::string> threads;  // "K/batch_size" -> recorded threads
  for (const auto& spec : ex.cells) {
    const auto rec = run_cell(spec, priors, opts);
    REQUIRE(rec.attr(schema::kStatus) == "ok");
    threads[std::to_string(spec.samples_per_measurement) + "/" + std::to_string(spec.sampler.get_int("batch_size"))] =
        rec.attr(schema::kThreads);
  }
  set_compute_threads(1);
  CHECK(threads.at("2/0") == "1");
  CHECK(threads.at("8/0") == "3");  // 8 chains in one call
  CHECK(threads.at("2/2") == "1");
  CHECK(threads.at("8/2") == "1");  // 8 chains, 2 per call
  CHECK(threads_for_batch(3, 2) == 1);
  CHECK(threads_for_batch(4, 2) == 2);
}

TEST_CASE("Each cell records its peak resident memory, scoring time and cell time", "[runner][resources]") {
  auto ex = parse_experiment_text(R"(
name: resources
seed: 1
measurements: 1
samples_per_measurement: 2
metrics: [mse_to_truth]
tasks: [{name: gmm_lowrank, d_y: 2, sigma_y: 0.1}]
priors: [{name: gmm, dim: 8, ode_steps: 4}]
samplers:
  - {name: test_allocates, megabytes: [0, 400]}
  - {name: test_allocates, megabytes: 200, chunked: true}
)", "inline.yaml");
  PriorCache priors;
  validate_experiment(ex, priors);
  REQUIRE(ex.cells.size() == 3);
  // The big cell first: without the per-cell reset the small cell would report the big one's peak.
  auto big = run_cell(ex.cells[1], priors, RunOptions{});
  auto small = run_cell(ex.cells[0], priors, RunOptions{});
  REQUIRE(small.attr(schema::kStatus) == "ok");
  REQUIRE(big.arrays.count(schema::kResourcesPeakRssBytes) == 1);  // Linux here supports the reset
  const double diff = static_cast<double>(big.arrays.at(schema::kResourcesPeakRssBytes)[0].item<int64_t>() -
                                          small.arrays.at(schema::kResourcesPeakRssBytes)[0].item<int64_t>());
  INFO("peak difference " << diff / (1 << 20) << " MiB");
#ifdef __SANITIZE_ADDRESS__
  // Under AddressSanitizer (make sanitize) its shadow memory and quarantine add to every allocation's resident
  // size and keep freed blocks resident: the peaks are not the program's own; the rest is checked.
  CHECK(diff > 0.95 * 400 * (1 << 20));
  return;
#endif
  CHECK(diff > 0.95 * 400 * (1 << 20));
  CHECK(diff < 1.10 * 400 * (1 << 20));
  const double cell = big.arrays.at(schema::kResourcesCellSeconds)[0].item<double>();
  const double scoring = big.arrays.at(schema::kResourcesScoringSeconds)[0].item<double>();
  CHECK(scoring >= 0);
  CHECK(cell >= scoring + big.arrays.at(schema::kTimeSamplingSeconds)[0].item<double>());
  CHECK(big.attr(schema::kInteropThreads) == std::to_string(at::get_num_interop_threads()));
  // Heap memory a cell freed but malloc kept must not count towards the next cell's peak.
  auto chunked = run_cell(ex.cells[2], priors, RunOptions{});
  auto after = run_cell(ex.cells[0], priors, RunOptions{});
  const double chunk_diff = static_cast<double>(chunked.arrays.at(schema::kResourcesPeakRssBytes)[0].item<int64_t>() -
                                                after.arrays.at(schema::kResourcesPeakRssBytes)[0].item<int64_t>());
  INFO("peak difference, chunked " << chunk_diff / (1 << 20) << " MiB");
  CHECK(chunk_diff > 0.95 * 200 * (1 << 20));
  CHECK(chunk_diff < 1.10 * 200 * (1 << 20));
}
