#pragma once
// Shared helpers for the Catch2 tests.
#include <ATen/ATen.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/linalg.h"

namespace psbench::testing {

// Runs the psbench binary with `args`, returns its exit code; stdout+stderr go to `log_path`.
inline int run_cli(const std::string& args, const std::string& log_path) {
  const std::string cmd = std::string(PSBENCH_BINARY) + " " + args + " > " + log_path + " 2>&1";
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// n chain seeds derived from `base` (one generator per chain, as the runner derives them).
std::vector<uint64_t> chain_seeds(int64_t n, uint64_t base);

std::string read_text(const std::string& path);
std::string temp_dir(const std::string& tag);  // fresh directory under /tmp

}  // namespace psbench::testing
