// psbench sample writes a PNG grid of prior draws with the right layout and plausible pixel values.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "io/png.h"

namespace fs = std::filesystem;

namespace {
int run_psbench(const std::string& args, const std::string& log) {
  const std::string cmd = std::string(PSBENCH_BINARY) + " " + args + " > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("psbench sample: PNG grid of ppca_mixture draws", "[ppca][cli][slow]") {
  const auto dir = fs::temp_directory_path() / ("psbench-sample-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const std::string png = (dir / "grid.png").string(), log = (dir / "log.txt").string();
  const std::string common = "sample --prior ppca_mixture --set rank=8 --set cache_dir=" + (dir / "cache").string();
  REQUIRE(run_psbench(common + " --n 6 --cols 3 --scale 1 --seed 2 --no-labels --out " + png, log) == 0);
  INFO(slurp(log));
  auto img = psbench::read_png(png);
  // 2 rows x 3 columns of 28x28 tiles with a 2-pixel border: 2*28 + 3*2 = 62 high, 3*28 + 4*2 = 92 wide.
  REQUIRE(img.sizes() == at::IntArrayRef({62, 92, 1}));
  auto px = img.select(2, 0).to(at::kDouble);
  CHECK(px.select(0, 0).eq(255).all().item<bool>());  // border is white
  for (int64_t t = 0; t < 6; ++t) {
    const int64_t r0 = 2 + (t / 3) * 30, c0 = 2 + (t % 3) * 30;
    auto tile = px.slice(0, r0, r0 + 28).slice(1, c0, c0 + 28);
    // Fashion-MNIST: dark background (pixel -1 -> 0) around a brighter object; a sample of the prior,
    // not noise and not a constant image.
    CHECK(tile.slice(0, 0, 2).mean().item<double>() < 90);  // uniform noise would give ~127
    CHECK(tile.max().item<double>() > 120);
    CHECK(tile.std().item<double>() > 30);
  }
  // Generator draws (Phi(z) through the probability-flow ODE) have the same layout.
  REQUIRE(run_psbench(common + " --method generator --n 4 --cols 4 --scale 2 --no-labels --out " + png, log) == 0);
  CHECK(psbench::read_png(png).sizes() == at::IntArrayRef({2 * 28 + 4, 4 * 56 + 5 * 2, 1}));
  // By default the picture says what it shows: a title band above the same grid and a value bar below.
  REQUIRE(run_psbench(common + " --method generator --n 4 --cols 4 --scale 2 --out " + png, log) == 0);
  auto labelled = psbench::read_png(png);
  CHECK(labelled.size(1) == 4 * 56 + 5 * 2);
  CHECK(labelled.size(0) > 2 * 28 + 4 + 20);
  CHECK(labelled.slice(0, 0, 12).lt(128).sum().item<int64_t>() > 50);  // ink of the title's first line
  // Bad input: exit code 2 and a message naming the key.
  CHECK(run_psbench("sample --prior ppca_mixture --set rnak=8 --out " + png, log) == 2);
  CHECK(slurp(log).find("rnak") != std::string::npos);
  CHECK(run_psbench("sample --prior gmm --out " + png, log) == 2);
  fs::remove_all(dir);
}
