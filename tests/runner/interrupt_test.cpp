// Interruption (README "Exit codes"): SIGKILL at any moment loses at most the running cell, and resuming
// gives every cell and metric bit for bit as an uninterrupted run; SIGINT/SIGTERM stop at a measurement
// boundary with exit code 3 and a valid file.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "runner/runner.h"
#include "store/result_store.h"
#include "store/schema.h"
#include "same_results.h"
#include "test_util.h"

using namespace psbench;
using psbench::testing::check_same_results;
using psbench::testing::read_text;
using psbench::testing::run_cli;
using psbench::testing::temp_dir;

namespace {

// 12 cells of 0.3–1 s each (Gaussian-mixture prior), three measurements each.
const char* kInterruptExperiment = R"(name: interrupt
seed: 3
measurements: 3
samples_per_measurement: 8
metrics: [mse_to_truth, posterior_mean_rmse, sliced_wasserstein]
tasks:
  - {name: gmm_lowrank, d_y: [1, 2, 3], sigma_y: 0.2}
priors:
  - {name: gmm, dim: 8, ode_steps: 4}
samplers:
  - exact
  - {name: noise_langevin, chains: 4, warm_start_steps: 20, burn_in: 20, step_size: [1.0e-3, 3.0e-3]}
  - {name: noise_mala, chains: 4, warm_start_steps: 20, burn_in: 20}
)";

// `psbench ARGS > LOG 2>&1` as a child process; returns its pid (exec: the pid is psbench's own).
pid_t spawn(const std::string& args, const std::string& log) {
  const std::string cmd = "exec " + std::string(PSBENCH_BINARY) + " " + args + " > " + log + " 2>&1";
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Cells of the results file the child has reported complete in its log: run now, or found complete.
int cells_logged(const std::string& log) {
  const auto text = read_text(log);
  int n = 0;
  for (const char* s : {": ok (", ": diverged (", ": failed (", ": already complete, skipped"})
    for (size_t p = text.find(s); p != std::string::npos; p = text.find(s, p + 1)) ++n;
  return n;
}

// Waits until the child has logged at least `cells` finished cells (or exited); false if it exited first.
bool wait_for_cells(pid_t pid, const std::string& log, int cells) {
  for (int i = 0; i < 6000; ++i) {
    if (cells_logged(log) >= cells) return true;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("SIGKILL at random moments then resume gives every cell bit for bit as an uninterrupted run",
          "[runner][interrupt]") {
  const auto dir = temp_dir("kill_resume");
  const std::string yaml = dir + "/k.yaml";
  std::ofstream(yaml) << kInterruptExperiment;
  REQUIRE(run_cli("run " + yaml + " --out " + dir + "/ref.h5", dir + "/ref.log") == 0);

  // Kill after the 1st, 4th, 7th and 10th cell were logged, plus 0–300 ms: inside a cell, or while it is written.
  std::mt19937 rng(20261202);
  std::uniform_int_distribution<int> extra_ms(0, 300);
  const std::string out = dir + "/killed.h5";
  int killed_mid_run = 0;
  for (int after : {1, 4, 7, 10}) {
    const std::string log = dir + "/kill" + std::to_string(after) + ".log";
    pid_t pid = spawn("run " + yaml + " --out " + out, log);
    if (wait_for_cells(pid, log, after)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(extra_ms(rng)));
      ::kill(pid, SIGKILL);
      killed_mid_run += wait_exit(pid) == 128 + SIGKILL;
    } else {
      wait_exit(pid);
    }
  }
  INFO(read_text(dir + "/kill10.log"));
  CHECK(killed_mid_run >= 3);  // the kills landed while the sweep ran, not after it finished
  REQUIRE(run_cli("run " + yaml + " --out " + out, dir + "/final.log") == 0);
  check_same_results(Hdf5Store(dir + "/ref.h5", "r").read_all(), Hdf5Store(out, "r").read_all());
  // The stored measurements' file beside the results is gone once every cell is written.
  CHECK_FALSE(std::filesystem::exists(out + ".inprogress.h5"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("A progress file left unreadable by a kill is moved aside and the run ends as an uninterrupted one",
          "[runner][interrupt]") {
  // What a SIGKILL while HDF5 creates the progress file leaves behind (seen once in CI): a file that is not HDF5.
  const auto dir = temp_dir("damaged_progress");
  const std::string yaml = dir + "/k.yaml", out = dir + "/out.h5";
  std::ofstream(yaml) << kInterruptExperiment;
  REQUIRE(run_cli("run " + yaml + " --out " + dir + "/ref.h5", dir + "/ref.log") == 0);
  std::ofstream(out + ".inprogress.h5") << "HDF5 killed mid-write";
  REQUIRE(run_cli("run " + yaml + " --out " + out, dir + "/run.log") == 0);
  CHECK(read_text(dir + "/run.log").find("moved to " + out + ".inprogress.h5.damaged") != std::string::npos);
  CHECK(std::filesystem::exists(out + ".inprogress.h5.damaged"));
  CHECK_FALSE(std::filesystem::exists(out + ".inprogress.h5"));
  check_same_results(Hdf5Store(dir + "/ref.h5", "r").read_all(), Hdf5Store(out, "r").read_all());
  std::filesystem::remove_all(dir);
}

TEST_CASE("SIGINT and SIGTERM stop a run at a measurement boundary with exit code 3 and a resumable file",
          "[runner][interrupt]") {
  const auto dir = temp_dir("sigint");
  const std::string yaml = dir + "/k.yaml";
  std::ofstream(yaml) << kInterruptExperiment;
  REQUIRE(run_cli("run " + yaml + " --out " + dir + "/ref.h5", dir + "/ref.log") == 0);
  const std::string out = dir + "/stopped.h5";
  for (int sig : {SIGINT, SIGTERM}) {
    const std::string log = dir + "/sig" + std::to_string(sig) + ".log";
    pid_t pid = spawn("run " + yaml + " --out " + out, log);
    REQUIRE(wait_for_cells(pid, log, sig == SIGINT ? 2 : 6));
    ::kill(pid, sig);
    CHECK(wait_exit(pid) == 3);
    const auto text = read_text(log);
    INFO(text);
    CHECK(text.find("interrupted (") != std::string::npos);
    CHECK(text.find("run the same command again to resume") != std::string::npos);
    // Only complete cells are in the file, and it opens.
    const auto n = Hdf5Store(out, "r").read_all().size();
    CHECK(n >= static_cast<size_t>(sig == SIGINT ? 2 : 6));
    CHECK(n < 12);
  }
  REQUIRE(run_cli("run " + yaml + " --out " + out, dir + "/final.log") == 0);
  check_same_results(Hdf5Store(dir + "/ref.h5", "r").read_all(), Hdf5Store(out, "r").read_all());
  std::filesystem::remove_all(dir);
}

TEST_CASE("A cell stopped half-way resumes from its stored measurements and ends bit for bit as an uninterrupted run",
          "[runner][interrupt]") {
  auto ex = parse_experiment_text(kInterruptExperiment, "k.yaml");
  RunOptions opts;
  MemoryStore reference, resumed;
  run_experiment(ex, reference, opts);

  // Stop after the 2nd measurement of the 5th cell: that cell is not written, its 2 measurements are kept.
  std::atomic<bool> stop{false};
  std::vector<std::string> lines;
  opts.stop = &stop;
  opts.log = [&](const std::string& line) { lines.push_back(line); };
  opts.progress = [&](const RunProgress& p) {
    if (p.cells_done == 4 && p.measurement == 2 && !p.cell_finished) stop = true;
  };
  auto first = run_experiment(ex, resumed, opts);
  CHECK(first.interrupted);
  CHECK(resumed.complete_keys().size() == 4);
  const std::string key = ex.cells[4].key();
  CHECK(resumed.complete_keys().count(key) == 0);
  CHECK(resumed.read_measurements(key).size() == 2);

  stop = false;
  opts.progress = nullptr;
  lines.clear();
  auto second = run_experiment(ex, resumed, opts);
  CHECK_FALSE(second.interrupted);
  CHECK(second.skipped == 4);
  bool said = false;
  for (const auto& l : lines) said = said || (l.find(key) != std::string::npos && l.find("2 measurements resumed") != std::string::npos);
  CHECK(said);
  CHECK(resumed.read_measurements(key).empty());  // dropped once the cell is written

  check_same_results(reference.read_all(), resumed.read_all());

  // Measurements stored by another build (git revision) are not used: the cell runs them again.
  MemoryStore foreign;
  std::atomic<bool> stop2{false};
  RunOptions o2;
  o2.stop = &stop2;
  o2.progress = [&](const RunProgress& p) {
    if (p.cells_done == 0 && p.measurement == 2 && !p.cell_finished) stop2 = true;
  };
  run_experiment(ex, foreign, o2);
  const std::string k0 = ex.cells[0].key();
  auto stored = foreign.read_measurements(k0);
  REQUIRE(stored.size() == 2);
  for (auto& [m, rec] : stored) {
    rec.attributes[schema::kGitRevision] = "another-build";
    rec.arrays["samples"] = rec.arrays["samples"] + 1.0;  // would change every metric if it were used
    foreign.write_measurement(k0, m, rec);
  }
  std::vector<std::string> lines2;
  RunOptions o3;
  o3.log = [&](const std::string& line) { lines2.push_back(line); };
  run_experiment(ex, foreign, o3);
  for (const auto& l : lines2) CHECK(l.find("resumed") == std::string::npos);
  std::map<std::string, CellRecord> ref_by_key;
  for (const auto& c : reference.read_all()) ref_by_key[c.key] = c;
  for (const auto& c : foreign.read_all())
    if (c.key == k0)
      for (const auto& [name, t] : c.arrays)
        if (name.rfind(schema::kMetricsGroup, 0) == 0) {
          INFO(name);
          CHECK(at::equal(t, ref_by_key.at(k0).arrays.at(name)));
        }
}
