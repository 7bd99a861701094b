// image_folder dataset: sorting, channels, resize + centre crop, and errors naming the path.
#include <catch2/catch.hpp>
#include <stb_image_write.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/errors.h"
#include "data/image_folder.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace psbench;
using namespace psbench::testing;

namespace {
// RGB image whose red channel encodes the column, green the row, blue a constant tag.
void write_rgb(const std::string& path, int w, int h, unsigned char tag) {
  std::vector<unsigned char> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px[(y * w + x) * 3 + 0] = static_cast<unsigned char>(x * 255 / std::max(1, w - 1));
      px[(y * w + x) * 3 + 1] = static_cast<unsigned char>(y * 255 / std::max(1, h - 1));
      px[(y * w + x) * 3 + 2] = tag;
    }
  REQUIRE(stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3));
}

struct NoPrior : DrawSource {
  std::string name() const override { return "none"; }
  Shape data_shape() const override { return {}; }
};
}  // namespace

TEST_CASE("resize_matrix: area averaging when shrinking, bilinear when enlarging", "[data]") {
  auto down = resize_matrix(4, 2);
  CHECK(at::allclose(down, at::tensor({0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5}, at::kDouble).reshape({2, 4})));
  // Non-integer factor: 3 -> 2, each output covers 1.5 input pixels.
  auto frac = resize_matrix(3, 2);
  CHECK(at::allclose(frac, at::tensor({2.0 / 3, 1.0 / 3, 0.0, 0.0, 1.0 / 3, 2.0 / 3}, at::kDouble).reshape({2, 3})));
  auto up = resize_matrix(2, 4);
  // Output centres at input coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
  CHECK(at::allclose(up, at::tensor({1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0}, at::kDouble).reshape({4, 2})));
  for (auto [in, out] : std::vector<std::pair<int64_t, int64_t>>{{37, 28}, {28, 37}, {5, 5}, {100, 3}})
    CHECK(at::allclose(resize_matrix(in, out).sum(1), at::ones({out}, at::kDouble)));
  CHECK(at::allclose(resize_matrix(5, 5), at::eye(5, at::kDouble)));
}

TEST_CASE("resize_and_center_crop keeps the centre of a wide image", "[data]") {
  // 1 x 4 x 8 ramp along the width: shrink to 2 x 4, crop the middle 2 columns.
  auto img = at::arange(8, at::kDouble).repeat({1, 4, 1});
  auto out = resize_and_center_crop(img, 2);
  REQUIRE(out.sizes() == at::IntArrayRef({1, 2, 2}));
  // Columns after area shrink: means of pairs (0.5, 2.5, 4.5, 6.5); crop keeps 2.5 and 4.5.
  CHECK(at::allclose(out[0][0], at::tensor({2.5, 4.5}, at::kDouble)));
}

TEST_CASE("image_folder dataset: sorted files, channels, size, errors", "[data]") {
  const std::string dir = temp_dir("imgfolder");
  write_rgb(dir + "/b.png", 40, 30, 200);
  write_rgb(dir + "/a.png", 30, 40, 10);
  write_rgb(dir + "/c.jpg", 20, 20, 100);
  std::ofstream(dir + "/notes.txt") << "not an image";
  const auto& entry = DatasetRegistry::instance().get("image_folder", "dataset");
  NoPrior prior;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);

  auto ds = entry.make(resolve_options("image_folder", entry.options,
                                       {{"path", dir}, {"size", int64_t{16}}, {"channels", int64_t{3}}}));
  CHECK(ds->shape(prior) == Shape{3, 16, 16});
  auto* folder = dynamic_cast<ImageFolderDataset*>(ds.get());
  REQUIRE(folder != nullptr);
  REQUIRE(folder->files().size() == 3);
  CHECK(fs::path(folder->files()[0]).filename() == "a.png");
  CHECK(fs::path(folder->files()[2]).filename() == "c.jpg");
  auto a = ds->ground_truth(0, prior, gen), b = ds->ground_truth(1, prior, gen);
  REQUIRE(a.sizes() == at::IntArrayRef({3, 16, 16}));
  CHECK(a.min().item<double>() >= -1.0);
  CHECK(a.max().item<double>() <= 1.0);
  // Blue channel is the constant tag: a.png has 10, b.png 200.
  CHECK(a[2].mean().item<double>() == Approx(10 / 127.5 - 1).margin(1e-5));
  CHECK(b[2].mean().item<double>() == Approx(200 / 127.5 - 1).margin(1e-5));
  // Red encodes the column: increasing from left to right after resize.
  CHECK((b[0].select(0, 8).diff() >= 0).all().item<bool>());
  CHECK_THROWS_AS(ds->ground_truth(3, prior, gen), ConfigError);

  auto grey = entry.make(resolve_options("image_folder", entry.options,
                                         {{"path", dir}, {"size", int64_t{8}}, {"channels", int64_t{1}}}));
  CHECK(grey->ground_truth(2, prior, gen).sizes() == at::IntArrayRef({1, 8, 8}));

  // Native size with differing sizes is an error naming the file.
  try {
    entry.make(resolve_options("image_folder", entry.options, {{"path", dir}, {"size", int64_t{0}}}));
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find(dir) != std::string::npos);
  }
  CHECK_THROWS_AS(entry.make(resolve_options("image_folder", entry.options,
                                             {{"path", dir}, {"channels", int64_t{2}}})),
                  ConfigError);
  try {
    entry.make(resolve_options("image_folder", entry.options, {{"path", dir + "/missing"}}));
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find(dir + "/missing") != std::string::npos);
  }
  // A broken image file is an error at load time naming it.
  const std::string broken_dir = temp_dir("imgfolder-broken");
  std::ofstream(broken_dir + "/x.png") << "garbage";
  auto broken = entry.make(resolve_options("image_folder", entry.options, {{"path", broken_dir}, {"size", int64_t{8}}}));
  try {
    broken->ground_truth(0, prior, gen);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find(broken_dir + "/x.png") != std::string::npos);
  }
}
