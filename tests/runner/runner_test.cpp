// End to end through the CLI and the HDF5 store: determinism, shared measurements, exit codes,
// atomic cells and resume.
#include <catch2/catch.hpp>

#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include "store/result_store.h"
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
      if (name.rfind("time/", 0) == 0) continue;  // wall times differ
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
  for (const char* l : {"/log1", "/log2", "/log3", "/log4", "/log5", "/log6", "/log7"}) {
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
