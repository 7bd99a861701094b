#include "test_util.h"

#include "core/rng.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace psbench::testing {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint64_t> chain_seeds(int64_t n, uint64_t base) {
  std::vector<uint64_t> s;
  for (int64_t i = 0; i < n; ++i) s.push_back(derive_seed({base, static_cast<uint64_t>(i)}));
  return s;
}

std::string temp_dir(const std::string& tag) {
  auto p = std::filesystem::temp_directory_path() / ("psbench-test-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

}  // namespace psbench::testing
