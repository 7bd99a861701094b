// Sweeps at scale (README "Sweeps at scale"): --only filters, --shard i/N partitions, `merge` combines the
// shards into the unsharded run's results and refuses what it cannot combine, and a second writer of one
// results file is refused.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "runner/experiment.h"
#include "runner/selection.h"
#include "store/merge.h"
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

// Six cells (3 samplers x 2 noise levels) that run in about a second.
const char* kShardExperiment = R"(name: shards
seed: 11
measurements: 2
samples_per_measurement: 4
metrics: [mse_to_truth, posterior_mean_rmse]
tasks:
  - {name: gmm_lowrank, d_y: 2, sigma_y: [0.1, 0.3]}
priors:
  - {name: gmm, dim: 6, ode_steps: 3}
samplers:
  - exact
  - {name: noise_langevin, chains: 2, warm_start_steps: 5, step_size: [1.0e-3, 1.0e-2]}
)";

std::string write_experiment(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("Shards partition the cells and their merge equals the unsharded run", "[runner][shard][cli]") {
  const auto dir = temp_dir("shards");
  const auto yaml = write_experiment(dir, "shards.yaml", kShardExperiment);
  REQUIRE(run_cli("run " + yaml + " --out " + dir + "/all.h5", dir + "/all.log") == 0);
  std::string shards;
  for (int i = 1; i <= 4; ++i) {  // 6 cells over 4 shards: sizes 2, 2, 1, 1
    const std::string s = dir + "/s" + std::to_string(i) + ".h5";
    INFO(read_text(dir + "/s.log"));
    REQUIRE(run_cli("run " + yaml + " --shard " + std::to_string(i) + "/4 --out " + s, dir + "/s.log") == 0);
    const auto cells = Hdf5Store(s, "r").read_all();
    CHECK(cells.size() == (i <= 2 ? 2u : 1u));
    for (const auto& c : cells) CHECK(std::stoi(c.attr(schema::kCellIndex)) % 4 == i - 1);
    CHECK(Hdf5Store(s, "r").file_attributes().at(schema::kShard) == std::to_string(i) + "/4");
    shards += " " + s;
  }
  // Shard 2 given twice: a duplicate with equal results is written once.
  REQUIRE(run_cli("merge " + dir + "/merged.h5" + shards + " " + dir + "/s2.h5", dir + "/merge.log") == 0);
  CHECK(read_text(dir + "/merge.log").find("6 cells of 6") != std::string::npos);
  CHECK(read_text(dir + "/merge.log").find("2 duplicate(s)") != std::string::npos);
  check_same_results(Hdf5Store(dir + "/all.h5", "r").read_all(), Hdf5Store(dir + "/merged.h5", "r").read_all());
  const auto attrs = Hdf5Store(dir + "/merged.h5", "r").file_attributes();
  CHECK(attrs.at(schema::kExperimentHash) == Hdf5Store(dir + "/all.h5", "r").file_attributes().at(schema::kExperimentHash));
  CHECK(attrs.count(schema::kShard) == 0);
  // The merged file is never overwritten by a later merge, and no temporary file is left behind.
  CHECK(run_cli("merge " + dir + "/merged.h5 " + dir + "/s1.h5", dir + "/again.log") == 2);
  CHECK(read_text(dir + "/again.log").find("does not overwrite") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir + "/merged.h5.merging"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("merge refuses shards of different experiments and cells whose results differ", "[runner][shard]") {
  const auto dir = temp_dir("merge_refuse");
  const auto a = write_experiment(dir, "a.yaml", kShardExperiment);
  std::string changed = kShardExperiment;
  changed.replace(changed.find("seed: 11"), 8, "seed: 12");
  const auto b = write_experiment(dir, "b.yaml", changed);
  REQUIRE(run_cli("run " + a + " --shard 1/2 --out " + dir + "/a1.h5", dir + "/a1.log") == 0);
  REQUIRE(run_cli("run " + b + " --shard 2/2 --out " + dir + "/b2.h5", dir + "/b2.log") == 0);
  CHECK(run_cli("merge " + dir + "/m.h5 " + dir + "/a1.h5 " + dir + "/b2.h5", dir + "/mix.log") == 2);
  const auto mix = read_text(dir + "/mix.log");
  CHECK(mix.find("experiment_hash") != std::string::npos);
  CHECK(mix.find("b2.h5") != std::string::npos);
  CHECK(std::count(mix.begin(), mix.end(), '\n') == 1);
  CHECK_FALSE(std::filesystem::exists(dir + "/m.h5"));

  // The same cell with different metric values in two files of one experiment.
  auto cells = Hdf5Store(dir + "/a1.h5", "r").read_all();
  auto ok = std::find_if(cells.begin(), cells.end(), [](const CellRecord& c) { return c.attr(schema::kStatus) == "ok"; });
  REQUIRE(ok != cells.end());
  const auto attrs = Hdf5Store(dir + "/a1.h5", "r").file_attributes();
  CellRecord altered = *ok;
  auto& mse = altered.arrays.at(std::string(schema::kMetricsGroup) + "mse_to_truth");
  mse = mse.clone();
  mse.index_put_({0}, mse[0] + 1e-9);
  { Hdf5Store(dir + "/x.h5", "a", attrs).write(altered); }
  try {
    merge_results(dir + "/m.h5", {dir + "/a1.h5", dir + "/x.h5"});
    FAIL("merge accepted a cell with two different results");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    CHECK(msg.find(altered.key) != std::string::npos);
    CHECK(msg.find("metrics/mse_to_truth") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(dir + "/m.h5"));
  // A file without experiment_hash (not a run's output) is refused by name.
  { Hdf5Store(dir + "/plain.h5", "a").write(cells.front()); }
  CHECK_THROWS_WITH(merge_results(dir + "/m.h5", {dir + "/a1.h5", dir + "/plain.h5"}),
                    Catch::Contains("plain.h5") && Catch::Contains("experiment_hash"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("Filters select cells by component, option value and key, and name a field no cell has",
          "[runner][shard]") {
  auto ex = parse_experiment_text(kShardExperiment, "shards.yaml");
  REQUIRE(ex.cells.size() == 6);
  auto pick = [&](std::vector<std::string> only, int64_t shard = 1, int64_t n = 1) {
    CellSelection sel;
    sel.only = std::move(only);
    sel.shard = shard;
    sel.num_shards = n;
    return select_cells(ex, sel).size();
  };
  CHECK(pick({}) == 6);
  CHECK(pick({"sampler=exact"}) == 2);
  CHECK(pick({"sampler=noise_langevin", "task.sigma_y=0.3"}) == 2);
  CHECK(pick({"sampler.step_size=0.001"}) == 2);  // by value: the file says 1.0e-3
  CHECK(pick({"sampler.step_size=1e-3", "sampler.step_size=1e-2"}) == 4);  // one field twice: either value
  CHECK(pick({"key=" + ex.cells[3].key()}) == 1);
  CHECK(pick({"sampler=noise_langevin"}, 2, 2) == 2);  // cells 1 and 3 of 2, 3, 4, 5
  CHECK_THROWS_WITH(pick({"sampler.temperature=1"}), Catch::Contains("sampler.temperature"));
  CHECK_THROWS_WITH(pick({"sampler=dps"}), Catch::Contains("selects no cell"));
  CHECK_THROWS_WITH(pick({"sampler"}), Catch::Contains("FIELD=VALUE"));
  CellSelection sel;
  for (const char* bad : {"0/2", "3/2", "1", "1/2x", "a/b"}) CHECK_THROWS_AS(parse_shard(bad, sel), ConfigError);
  parse_shard("2/3", sel);
  CHECK((sel.shard == 2 && sel.num_shards == 3));
  // What the sweep varies, per cell (run --dry-run lists it): the noise level for every cell, the step size
  // for the Langevin cells only; nothing that all cells share.
  const auto swept = swept_values(ex);
  REQUIRE(swept.size() == 6);
  CHECK(swept[0] == std::vector<std::string>{"task.sigma_y=0.1", "sampler=exact"});
  CHECK(swept[1] == std::vector<std::string>{"task.sigma_y=0.1", "sampler=noise_langevin",
                                             "sampler.step_size=0.001"});
  for (const auto& row : swept)
    for (const auto& v : row) CHECK(v.rfind("seed=", 0) != 0);
  // Every shard's experiment_hash is the experiment's: it changes with any cell's configuration only.
  std::string changed = kShardExperiment;
  changed.replace(changed.find("1.0e-2"), 6, "2.0e-2");
  CHECK(experiment_hash(ex) == experiment_hash(parse_experiment_text(kShardExperiment, "elsewhere.yaml")));
  CHECK(experiment_hash(ex) != experiment_hash(parse_experiment_text(changed, "shards.yaml")));
}

TEST_CASE("A second process writing the same results file is refused and the file is left alone",
          "[runner][shard][cli]") {
  const auto dir = temp_dir("writer_lock");
  const auto yaml = write_experiment(dir, "shards.yaml", kShardExperiment);
  const std::string out = dir + "/r.h5", other = dir + "/other.h5";
  REQUIRE(run_cli("run " + yaml + " --only sampler=exact --out " + other, dir + "/other.log") == 0);
  {
    WriterLock held(out);  // as a running `psbench run` holds it
    CHECK(run_cli("run " + yaml + " --out " + out, dir + "/second.log") == 2);
    const auto msg = read_text(dir + "/second.log");
    CHECK(msg.find("another psbench process (pid " + std::to_string(::getpid()) + ")") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
    CHECK(run_cli("run " + yaml + " --out " + out + " --fresh", dir + "/fresh.log") == 2);
    CHECK(run_cli("merge " + out + " " + other, dir + "/merge.log") == 2);
    CHECK(read_text(dir + "/merge.log").find("another psbench process") != std::string::npos);
  }
  // Released (as when the first process exits or is killed): the run proceeds.
  CHECK(run_cli("run " + yaml + " --out " + out, dir + "/after.log") == 0);
  CHECK(Hdf5Store(out, "r").read_all().size() == 6);
  std::filesystem::remove_all(dir);
}

TEST_CASE("psbench slurm writes a job array of the shards and a dependent merge job that reproduce the run",
          "[runner][shard][slurm]") {
  const auto dir = temp_dir("slurm_scripts");
  const auto yaml = write_experiment(dir, "shards.yaml", kShardExperiment);
  const std::string scripts = dir + "/jobs";
  // Run from `dir`: the scripts cd there and write results/ under it.
  const std::string in_dir = "cd " + dir + " && ";
  REQUIRE(std::system((in_dir + PSBENCH_BINARY + " slurm " + yaml + " --shards 3 --cpus 2 --gpus 1 --mem 4G --time 1:00:00 "
                       "--partition short --var 'NAME=a b' --dir " + scripts + " > " + dir + "/slurm.log 2>&1").c_str()) == 0);
  const auto array = read_text(scripts + "/array.sh"), merge = read_text(scripts + "/merge.sh"),
             submit = read_text(scripts + "/submit.sh");
  INFO(array << merge << submit);
  for (const char* want : {"#SBATCH --array=1-3", "#SBATCH --cpus-per-task=2", "#SBATCH --gres=gpu:1", "#SBATCH --mem=4G",
                           "#SBATCH --time=1:00:00", "#SBATCH --partition=short", "#SBATCH --requeue", "--shard \"$i/3\"",
                           "--threads 2 --device cuda", "--var 'NAME=a b'", "results/shards.shard-${i}-of-3.h5"})
    CHECK(array.find(want) != std::string::npos);
  for (int i = 1; i <= 3; ++i) CHECK(merge.find("results/shards.shard-" + std::to_string(i) + "-of-3.h5") != std::string::npos);
  CHECK(submit.find("--dependency=afterok:$array") != std::string::npos);
  for (const char* f : {"array.sh", "merge.sh", "submit.sh"})
    CHECK(std::system(("sh -n " + scripts + "/" + f).c_str()) == 0);

  // Without Slurm: each array task as Slurm would start it (SLURM_ARRAY_TASK_ID), then the merge job. The
  // scripts ask for CUDA above; here a CPU copy of the array script runs (the same script but the device).
  REQUIRE(std::system((in_dir + PSBENCH_BINARY + " slurm " + yaml + " --shards 3 --dir " + scripts + "-cpu > " + dir +
                       "/slurm_cpu.log 2>&1").c_str()) == 0);
  for (int i = 1; i <= 3; ++i)
    REQUIRE(std::system(("cd " + dir + " && SLURM_ARRAY_TASK_ID=" + std::to_string(i) + " sh " + scripts +
                         "-cpu/array.sh > " + dir + "/task.log 2>&1").c_str()) == 0);
  CHECK(std::system(("sh " + scripts + "-cpu/array.sh > " + dir + "/no_task.log 2>&1").c_str()) != 0);
  REQUIRE(std::system(("sh " + scripts + "-cpu/merge.sh > " + dir + "/merge.log 2>&1").c_str()) == 0);
  REQUIRE(run_cli("run " + yaml + " --out " + dir + "/all.h5", dir + "/all.log") == 0);
  check_same_results(Hdf5Store(dir + "/all.h5", "r").read_all(), Hdf5Store(dir + "/results/shards.h5", "r").read_all());
  // A bad experiment fails before any script is written.
  CHECK(run_cli("slurm " + dir + "/missing.yaml --shards 2 --dir " + dir + "/none", dir + "/bad.log") == 2);
  CHECK_FALSE(std::filesystem::exists(dir + "/none"));
  CHECK(run_cli("slurm " + yaml + " --dir " + dir + "/none", dir + "/noshards.log") == 2);
  std::filesystem::remove_all(dir);
}
