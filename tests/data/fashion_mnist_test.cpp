// Fashion-MNIST loader: the real package files, and a generated set of damaged files that must give
// one-line ConfigErrors naming the file, never a crash.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/errors.h"
#include "data/fashion_mnist.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace psbench;
using namespace psbench::testing;

namespace {

bool package_installed() {
  return fs::exists(fs::path(kFashionMnistDefaultRoot) / "t10k-images-idx3-ubyte.gz");
}

void put_be32(std::vector<unsigned char>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>((v >> s) & 0xff));
}

// An IDX image file body: header (magic, declared count, rows, cols) and `actual` images.
std::vector<unsigned char> idx_images(uint32_t magic, uint32_t declared, int64_t actual, uint32_t rows = 28,
                                      uint32_t cols = 28) {
  std::vector<unsigned char> b;
  put_be32(b, magic);
  put_be32(b, declared);
  put_be32(b, rows);
  put_be32(b, cols);
  for (int64_t i = 0; i < actual * rows * cols; ++i) b.push_back(static_cast<unsigned char>(i % 256));
  return b;
}

std::vector<unsigned char> idx_labels(uint32_t magic, uint32_t declared, int64_t actual, unsigned char max_label = 9) {
  std::vector<unsigned char> b;
  put_be32(b, magic);
  put_be32(b, declared);
  for (int64_t i = 0; i < actual; ++i) b.push_back(static_cast<unsigned char>(i % (max_label + 1)));
  return b;
}

void write_gz(const std::string& path, const std::vector<unsigned char>& body) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, body.data(), static_cast<unsigned>(body.size())) == static_cast<int>(body.size()));
  gzclose(f);
}

void write_raw(const std::string& path, const std::vector<unsigned char>& body) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(body.data()),
                                              static_cast<std::streamsize>(body.size()));
}

std::vector<unsigned char> read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Expects a ConfigError whose message names `path` and contains `fragment`.
void require_config_error(const std::string& images, const std::string& labels, const std::string& path,
                          const std::string& fragment) {
  try {
    read_fashion_mnist_files(images, labels);
    FAIL("no error for " << path);
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(fragment) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

}  // namespace

TEST_CASE("fashion_mnist: the package splits have 60000/10000 images, 6000/1000 per class", "[data]") {
  if (!package_installed()) FAIL("Debian package dataset-fashion-mnist is not installed (run make deps)");
  for (const auto& [split, n] : std::vector<std::pair<std::string, int64_t>>{{"train", 60000}, {"test", 10000}}) {
    auto s = load_fashion_mnist(kFashionMnistDefaultRoot, split);
    REQUIRE(s->images.sizes() == at::IntArrayRef({n, 28, 28}));
    REQUIRE(s->labels.sizes() == at::IntArrayRef({n}));
    auto counts = at::bincount(s->labels, {}, kFashionMnistClasses);
    CHECK(counts.eq(n / kFashionMnistClasses).all().item<bool>());
    // Not all black: real images use the whole 0..255 range.
    CHECK(s->images.max().item<int64_t>() == 255);
    CHECK(s->images.min().item<int64_t>() == 0);
    // Loaded once: the second request returns the same shared object.
    CHECK(load_fashion_mnist(kFashionMnistDefaultRoot, split).get() == s.get());
  }
}

TEST_CASE("fashion_mnist dataset: 1x28x28 images in -1..1, index i -> image offset + i, labels", "[data]") {
  if (!package_installed()) FAIL("Debian package dataset-fashion-mnist is not installed (run make deps)");
  const auto& entry = DatasetRegistry::instance().get("fashion_mnist", "dataset");
  auto opts = resolve_options("fashion_mnist", entry.options, {{"offset", int64_t{5}}});
  auto ds = entry.make(opts);
  auto* fm = dynamic_cast<FashionMnistDataset*>(ds.get());
  REQUIRE(fm != nullptr);
  CHECK_FALSE(ds->uses_prior());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  struct NoPrior : DrawSource {
    std::string name() const override { return "none"; }
    Shape data_shape() const override { return {1, 28, 28}; }
  } prior;
  CHECK(ds->shape(prior) == Shape{1, 28, 28});
  auto split = load_fashion_mnist(kFashionMnistDefaultRoot, "test");
  for (int64_t i : {0, 3, 100}) {
    auto x = ds->ground_truth(i, prior, gen);
    REQUIRE(x.sizes() == at::IntArrayRef({1, 28, 28}));
    CHECK(x.scalar_type() == at::kFloat);
    CHECK(x.min().item<double>() >= -1.0);
    CHECK(x.max().item<double>() <= 1.0);
    auto raw = split->images[5 + i].to(at::kFloat);
    CHECK(at::allclose(x[0], raw / 127.5 - 1.0));
    CHECK(fm->label(i) == split->labels[5 + i].item<int64_t>());
  }
  CHECK_THROWS_AS(ds->ground_truth(10000 - 5, prior, gen), ConfigError);
  CHECK_THROWS_AS(entry.make(resolve_options("fashion_mnist", entry.options, {{"offset", int64_t{10000}}})), ConfigError);
}

TEST_CASE("fashion_mnist: a missing package names the package and the path", "[data]") {
  const std::string root = temp_dir("fm-missing") + "/nowhere";
  try {
    load_fashion_mnist(root, "test");
    FAIL("no error");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("dataset-fashion-mnist") != std::string::npos);
    CHECK(msg.find("make deps") != std::string::npos);
    CHECK(msg.find(root) != std::string::npos);
  }
  // Directory present, files missing: the missing file is named.
  const std::string dir = temp_dir("fm-empty");
  try {
    load_fashion_mnist(dir, "train");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find(dir + "/train-images-idx3-ubyte.gz") != std::string::npos);
  }
}

TEST_CASE("fashion_mnist: damaged files give ConfigErrors naming the file", "[data]") {
  const std::string dir = temp_dir("fm-damaged");
  const std::string good_images = dir + "/good-images.gz", good_labels = dir + "/good-labels.gz";
  write_gz(good_images, idx_images(2051, 10, 10));
  write_gz(good_labels, idx_labels(2049, 10, 10));
  {
    auto s = read_fashion_mnist_files(good_images, good_labels);
    CHECK(s.size() == 10);
    CHECK(s.images[1][0][0].item<int64_t>() == 784 % 256);
    CHECK(s.labels[9].item<int64_t>() == 9);
  }
  SECTION("empty file") {
    const std::string p = dir + "/empty.gz";
    write_raw(p, {});
    require_config_error(p, good_labels, p, "empty");
  }
  SECTION("not gzip") {
    const std::string p = dir + "/plain.gz";
    write_raw(p, idx_images(2051, 10, 10));
    require_config_error(p, good_labels, p, "not a gzip file");
  }
  SECTION("truncated gzip stream") {
    const std::string p = dir + "/truncated.gz";
    auto bytes = read_raw(good_images);
    bytes.resize(bytes.size() / 2);
    write_raw(p, bytes);
    require_config_error(p, good_labels, p, "truncated");
  }
  SECTION("gzip trailer cut off") {
    const std::string p = dir + "/no-trailer.gz";
    auto bytes = read_raw(good_images);
    bytes.resize(bytes.size() - 4);
    write_raw(p, bytes);
    require_config_error(p, good_labels, p, "gzip");
  }
  SECTION("corrupted compressed data") {
    const std::string p = dir + "/corrupted.gz";
    auto bytes = read_raw(good_images);
    for (size_t i = 20; i < bytes.size() - 10; i += 7) bytes[i] ^= 0x5a;
    write_raw(p, bytes);
    require_config_error(p, good_labels, p, "corrupted");
  }
  SECTION("bad magic in images and labels") {
    const std::string p = dir + "/magic.gz";
    write_gz(p, idx_images(2049, 10, 10));
    require_config_error(p, good_labels, p, "bad magic number 2049");
    write_gz(p, idx_labels(2051, 10, 10));
    require_config_error(good_images, p, p, "bad magic number 2051");
  }
  SECTION("declared count larger than the data") {
    const std::string p = dir + "/short.gz";
    write_gz(p, idx_images(2051, 11, 10));
    require_config_error(p, good_labels, p, "truncated");
  }
  SECTION("declared count smaller than the data") {
    const std::string p = dir + "/long.gz";
    write_gz(p, idx_images(2051, 9, 10));
    require_config_error(p, good_labels, p, "trailing data");
  }
  SECTION("absurd count does not allocate") {
    const std::string p = dir + "/huge.gz";
    write_gz(p, idx_images(2051, 0xffffffffu, 1));
    require_config_error(p, good_labels, p, "implausible item count");
  }
  SECTION("wrong image dimensions") {
    const std::string p = dir + "/dims.gz";
    write_gz(p, idx_images(2051, 10, 10, 32, 32));
    require_config_error(p, good_labels, p, "expected 28x28");
  }
  SECTION("label out of range") {
    const std::string p = dir + "/labels.gz";
    write_gz(p, idx_labels(2049, 12, 12, 11));
    require_config_error(good_images, p, p, "outside 0..9");
  }
  SECTION("image and label counts differ") {
    const std::string p = dir + "/labels8.gz";
    write_gz(p, idx_labels(2049, 8, 8));
    require_config_error(good_images, p, p, "has 8 labels");
  }
  SECTION("a damaged split under a root is reported through the loader") {
    const std::string root = temp_dir("fm-root");
    write_gz(root + "/t10k-images-idx3-ubyte.gz", idx_images(2051, 10, 10));
    write_raw(root + "/t10k-labels-idx1-ubyte.gz", {1, 2, 3});
    CHECK_THROWS_AS(load_fashion_mnist(root, "test"), ConfigError);
    write_gz(root + "/t10k-labels-idx1-ubyte.gz", idx_labels(2049, 10, 10));
    CHECK(load_fashion_mnist(root, "test")->size() == 10);
  }
}
