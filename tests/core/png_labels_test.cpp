// Grid PNGs carry their labels inside the picture (io/png.h): the bitmap font, the layout and where
// each label lands.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>

#include "io/png.h"

namespace fs = std::filesystem;
using psbench::GridLabels;

namespace {
std::string temp_png(const char* name) {
  const auto dir = fs::temp_directory_path() / ("psbench-png-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  return (dir / name).string();
}
// The PNG's grey pixels [H, W] of a single-channel grid as int64.
at::Tensor grey(const std::string& path) { return psbench::read_png(path).select(2, 0).to(at::kLong); }
}  // namespace

TEST_CASE("bitmap font: every printable ASCII glyph is distinct and inked, cells keep a blank column and row below all but descenders", "[png]") {
  std::set<std::string> seen;
  for (int c = 32; c < 127; ++c) {
    const std::string s(1, static_cast<char>(c));
    auto b = psbench::text_bitmap(s);
    REQUIRE(b.sizes() == at::IntArrayRef({8, 6}));
    INFO("glyph '" << s << "'");
    if (c != ' ') CHECK(b.sum().item<int64_t>() > 0);
    CHECK(b.select(1, 5).sum().item<int64_t>() == 0);  // spacing column
    if (std::string("gjpqy").find(s) == std::string::npos)
      CHECK(b.select(0, 7).sum().item<int64_t>() == 0);  // spacing row, except under descenders
    auto bytes = b.contiguous();
    seen.insert(std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), 48));
  }
  CHECK(seen.size() == 95);
  // Scaling enlarges each font pixel; text outside ASCII prints one '?' per code point.
  auto big = psbench::text_bitmap("Ab", 3);
  CHECK(big.sizes() == at::IntArrayRef({24, 36}));
  CHECK(at::equal(big.slice(0, 0, 24, 3).slice(1, 0, 36, 3), psbench::text_bitmap("Ab")));
  CHECK(at::equal(psbench::text_bitmap("\xcf\x83=1"), psbench::text_bitmap("?=1")));
}

TEST_CASE("a labelled grid: title, column and row names and value bar land where the layout says", "[png]") {
  std::vector<at::Tensor> tiles;
  for (int i = 0; i < 6; ++i) tiles.push_back(at::full({1, 28, 28}, -1.0 + 0.4 * i));
  const auto bare_path = temp_png("bare.png"), path = temp_png("labelled.png");

  // No labels: the bare grid, as before labels existed.
  auto bare = psbench::write_png_grid(bare_path, tiles, 3, 2, 4);
  CHECK(bare.height == 2 * 112 + 3 * 2);
  CHECK(bare.width == 3 * 112 + 4 * 2);
  CHECK(bare.tile_origins.at(4) == std::make_pair<int64_t, int64_t>(2 + 114, 2 + 114));

  GridLabels labels;
  labels.title = "Title 1";
  labels.column_names = {"left", "middle", "right"};
  labels.row_names = {"first row", "second row"};
  labels.value_bar = "pixel value";
  auto lay = psbench::write_png_grid(path, tiles, 3, 2, 4, labels);
  auto px = grey(path);
  REQUIRE(px.size(0) == lay.height);
  REQUIRE(px.size(1) == lay.width);
  CHECK(lay.font_scale == 2);  // 112-pixel tiles
  CHECK(lay.height > bare.height);
  CHECK(lay.width > bare.width);  // the row names' band
  // Every tile is where the layout says, with its value ((v + 1) * 127.5).
  for (int i = 0; i < 6; ++i) {
    const auto [r, c] = lay.tile_origins.at(i);
    auto tile = px.slice(0, r, r + 112).slice(1, c, c + 112);
    INFO("tile " << i);
    CHECK(tile.min().item<int64_t>() == tile.max().item<int64_t>());
    CHECK(tile.min().item<int64_t>() == static_cast<int64_t>(std::lround((0.4 * i) * 127.5)));
  }
  // The title is drawn pixel for pixel: ink black, paper white.
  const auto [ty, tx] = lay.title_origin;
  auto ink = psbench::text_bitmap("Title 1", 2).to(at::kLong);
  auto drawn = px.slice(0, ty, ty + ink.size(0)).slice(1, tx, tx + ink.size(1));
  CHECK(at::equal(drawn, (1 - ink) * 255));
  // Column names over their columns, row names left of their rows: ink there, in the white surround.
  const int64_t first_tile_row = lay.tile_origins.at(0).first, first_tile_col = lay.tile_origins.at(0).second;
  for (int c = 0; c < 3; ++c) {
    const int64_t x0 = lay.tile_origins.at(c).second;
    auto header = px.slice(0, ty + 20, first_tile_row).slice(1, x0, x0 + 112);
    INFO("column " << c);
    CHECK(header.eq(0).sum().item<int64_t>() > 20);
  }
  for (int r = 0; r < 2; ++r) {
    const int64_t y0 = lay.tile_origins.at(3 * r).first;
    auto band = px.slice(0, y0, y0 + 112).slice(1, 0, first_tile_col);
    INFO("row " << r);
    CHECK(band.eq(0).sum().item<int64_t>() > 20);
  }
  // The value bar: a grey ramp from 0 to 255 below the grid, rising left to right.
  const int64_t grid_bottom = lay.tile_origins.at(5).first + 112;
  auto below = px.slice(0, grid_bottom, lay.height);
  bool ramp_found = false;
  for (int64_t y = 0; y < below.size(0) && !ramp_found; ++y) {
    auto line = below[y];
    auto grey_px = line.gt(0).logical_and(line.lt(255));
    if (grey_px.sum().item<int64_t>() < 100) continue;
    auto vals = line.masked_select(line.gt(0).logical_and(line.lt(255)));
    ramp_found = (vals.slice(0, 1) >= vals.slice(0, 0, -1)).all().item<bool>();
  }
  CHECK(ramp_found);
  fs::remove_all(fs::path(path).parent_path());
  fs::remove_all(fs::path(bare_path).parent_path());
}

namespace {
std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
}  // namespace

TEST_CASE("decode_image: an empty IDAT chunk adds nothing, damaged and missing files are ConfigErrors naming them", "[png]") {
  const auto path = temp_png("plain.png");
  auto img = at::linspace(-1, 1, 36).reshape({1, 6, 6});
  psbench::write_png_grid(path, {img}, 1, 0);
  const auto plain = psbench::decode_image(path);
  REQUIRE(plain.sizes() == at::IntArrayRef({6, 6, 1}));
  // An empty IDAT before the first one: the PNG is valid and means the same image (its data is the
  // concatenation of the IDAT payloads). stb_image alone copies zero bytes to a null buffer there (UBSan).
  std::string bytes = read_file(path);
  const auto idat = bytes.find("IDAT");
  REQUIRE(idat != std::string::npos);
  const std::string empty_idat("\0\0\0\0IDAT\x35\xaf\x06\x1e", 12);  // length 0, type, CRC-32 of "IDAT"
  bytes.insert(idat - 4, empty_idat);
  const auto with_empty = temp_png("empty_idat.png");
  write_file(with_empty, bytes);
  CHECK(at::equal(psbench::decode_image(with_empty), plain));
  CHECK(psbench::decode_image(with_empty, 3).sizes() == at::IntArrayRef({6, 6, 3}));
  const auto info = psbench::image_info(with_empty);
  CHECK((info.width == 6 && info.height == 6 && info.channels == 1));

  const auto truncated = temp_png("truncated.png");
  write_file(truncated, bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH(psbench::decode_image(truncated), Catch::Contains(truncated) && Catch::Contains("cannot decode"));
  CHECK_THROWS_WITH(psbench::decode_image(truncated + ".missing"), Catch::Contains("cannot open image file"));
  CHECK_THROWS_WITH(psbench::image_info(truncated + ".missing"), Catch::Contains("cannot read image header"));
}
