// psbench slurm: a Slurm job array that runs an experiment's shards (psbench run --shard i/N) and a merge
// job that waits for them. Slurm schedules; psbench only writes the scripts (and submits them on request).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "runner/experiment.h"
#include "runner/variables.h"

namespace psbench {
namespace {
namespace po = boost::program_options;
namespace fs = std::filesystem;

void write_script(const fs::path& path, const std::string& text) {
  {
    std::ofstream f(path);
    if (!(f << text)) throw ConfigError(path.string() + ": cannot write");
  }
  ::chmod(path.c_str(), 0755);
}

struct SlurmSettings {
  std::string partition, time, mem, account;
  int cpus = 1, gpus = 0;
};

// #SBATCH lines shared by both jobs.
std::string sbatch_header(const std::string& job_name, const SlurmSettings& s, const std::string& log) {
  std::ostringstream h;
  h << "#!/bin/sh\n#SBATCH --job-name=" << job_name << "\n#SBATCH --output=" << log << "\n";
  if (!s.partition.empty()) h << "#SBATCH --partition=" << s.partition << "\n";
  if (!s.account.empty()) h << "#SBATCH --account=" << s.account << "\n";
  if (!s.time.empty()) h << "#SBATCH --time=" << s.time << "\n";
  if (!s.mem.empty()) h << "#SBATCH --mem=" << s.mem << "\n";
  return h.str();
}

std::string self_path() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw ConfigError("slurm: cannot find the psbench executable (/proc/self/exe): " + ec.message());
  return p.string();
}

int cmd_slurm(const std::vector<std::string>& args) {
  po::options_description desc("psbench slurm EXPERIMENT.yaml --shards N [options]");
  std::string experiment, dir;
  std::vector<std::string> vars;
  SlurmSettings s;
  int shards = 0;
  desc.add_options()("help,h", "show this help")("experiment", po::value(&experiment), "experiment YAML file")(
      "shards,n", po::value(&shards), "number of shards = array tasks (required)")(
      "partition,p", po::value(&s.partition), "Slurm partition (default: the cluster's)")(
      "time,t", po::value(&s.time), "time limit per array task, Slurm format (e.g. 4:00:00)")(
      "cpus,c", po::value(&s.cpus)->default_value(1), "CPUs per task (also psbench's --threads)")(
      "gpus,g", po::value(&s.gpus)->default_value(0), "GPUs per task (> 0: --gres=gpu:G and --device cuda)")(
      "mem,m", po::value(&s.mem), "memory per task, Slurm format (e.g. 8G)")(
      "account,A", po::value(&s.account), "Slurm account")(
      "var", po::value<std::vector<std::string>>(&vars)->composing(), "NAME=VALUE passed to every shard's run")(
      "dir", po::value(&dir), "where the scripts and Slurm logs go (default results/<experiment name>.slurm)")(
      "submit", "submit with sbatch (the array, then the merge job depending on it) and print the job ids");
  po::positional_options_description pos;
  pos.add("experiment", 1);
  auto vm = parse_command_line(args, desc, &pos);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (experiment.empty()) throw UsageError("slurm: missing EXPERIMENT.yaml");
  if (shards < 1) throw UsageError("slurm: --shards N (>= 1) is required");
  if (s.cpus < 1) throw UsageError("slurm: --cpus must be >= 1, got " + std::to_string(s.cpus));
  if (s.gpus < 0) throw UsageError("slurm: --gpus must be >= 0, got " + std::to_string(s.gpus));
  // The experiment must load (variables included) before anything is written: a bad file fails here,
  // not in N array tasks hours later.
  Variables variables;
  for (const auto& v : vars) variables.insert(parse_variable_assignment(v));
  const auto ex = load_experiment(experiment, variables);

  const fs::path cwd = fs::current_path();
  const fs::path exp_abs = fs::absolute(experiment);
  if (dir.empty()) dir = "results/" + ex.name + ".slurm";
  const fs::path script_dir = fs::absolute(dir);
  fs::create_directories(script_dir);
  const std::string n = std::to_string(shards);
  const std::string shard_file = "results/" + ex.name + ".shard-${i}-of-" + n + ".h5";
  const std::string merged = "results/" + ex.name + ".h5";

  std::string run_args = " --threads " + std::to_string(s.cpus) + (s.gpus > 0 ? " --device cuda" : "");
  for (const auto& v : vars) run_args += " --var " + shell_quote(v);

  // The array: task i runs shard i. A requeued or preempted task runs the same command and resumes its
  // shard (complete cells are skipped); SIGTERM, Slurm's preemption signal, stops psbench cleanly.
  std::ostringstream array;
  array << sbatch_header("psbench-" + ex.name, s, (script_dir / "shard-%a.log").string())
        << "#SBATCH --array=1-" << n << "\n#SBATCH --cpus-per-task=" << s.cpus << "\n#SBATCH --ntasks=1\n"
        << (s.gpus > 0 ? "#SBATCH --gres=gpu:" + std::to_string(s.gpus) + "\n" : "") << "#SBATCH --requeue\n"
        << "# Written by `psbench slurm` for " << exp_abs.string() << " (" << ex.cells.size() << " cells, " << n
        << " shards).\nset -eu\ncd " << shell_quote(cwd.string()) << "\ni=${SLURM_ARRAY_TASK_ID:?not run as a Slurm array task}\n"
        << "mkdir -p results\nexec " << shell_quote(self_path()) << " run " << shell_quote(exp_abs.string()) << " --shard \"$i/"
        << n << "\" --out \"" << shard_file << "\"" << run_args << "\n";
  // The merge: after every array task succeeded.
  std::ostringstream merge;
  merge << sbatch_header("psbench-" + ex.name + "-merge", s, (script_dir / "merge.log").string())
        << "#SBATCH --cpus-per-task=1\n#SBATCH --ntasks=1\n"
        << "# Merges the shards of psbench-" << ex.name << " (submitted with --dependency=afterok on the array).\n"
        << "set -eu\ncd " << shell_quote(cwd.string()) << "\nexec " << shell_quote(self_path()) << " merge \"" << merged
        << "\"";
  for (int i = 1; i <= shards; ++i)
    merge << " \"results/" << ex.name << ".shard-" << i << "-of-" << n << ".h5\"";
  merge << "\n";
  // Submission: the array, then the merge job depending on it; prints both job ids.
  std::ostringstream submit;
  submit << "#!/bin/sh\n# Submits " << (script_dir / "array.sh").string() << " and the merge job after it.\nset -eu\n"
         << "array=$(sbatch --parsable " << shell_quote((script_dir / "array.sh").string()) << ")\narray=${array%%;*}\n"
         << "merge=$(sbatch --parsable --dependency=afterok:$array " << shell_quote((script_dir / "merge.sh").string())
         << ")\nmerge=${merge%%;*}\necho \"array job $array (" << n << " tasks), merge job $merge -> " << merged << "\"\n";
  write_script(script_dir / "array.sh", array.str());
  write_script(script_dir / "merge.sh", merge.str());
  write_script(script_dir / "submit.sh", submit.str());
  std::cerr << "psbench slurm: " << ex.cells.size() << " cells in " << n << " shards; wrote "
            << (script_dir / "array.sh").string() << ", merge.sh and submit.sh" << std::endl;
  if (!vm.count("submit")) {
    std::cout << "submit with: " << (script_dir / "submit.sh").string() << std::endl;
    return 0;
  }
  const int rc = std::system(shell_quote((script_dir / "submit.sh").string()).c_str());
  if (rc != 0) {
    std::cerr << "psbench slurm: sbatch failed (is Slurm's sbatch on PATH and the controller up?)" << std::endl;
    return 1;
  }
  return 0;
}

CommandRegistrar reg_slurm({"slurm",
                            "slurm EXPERIMENT.yaml --shards N [--partition P --time T --cpus C --gpus G --mem M] [--submit]",
                            "write (and with --submit, submit) a Slurm job array of the experiment's shards and a merge job",
                            cmd_slurm});

}  // namespace
}  // namespace psbench
