#include "io/png.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#include <cstdlib>
#include <cstring>

namespace {
// stb_image's buffers start zeroed: on a damaged PNG (tests/fuzz, Valgrind memcheck) its decoder reads filter
// bytes from a part of its buffer that the damaged stream never wrote, so the image would depend on whatever
// the allocator held. Zeroed, a damaged file decodes (or is refused) the same way every time.
void* stbi_zeroed_realloc(void* p, size_t old_size, size_t new_size) {
  auto* q = static_cast<unsigned char*>(std::realloc(p, new_size));
  if (q && new_size > old_size) std::memset(q + old_size, 0, new_size - old_size);
  return q;
}
}  // namespace
#define STBI_MALLOC(size) std::calloc(1, size)
#define STBI_REALLOC_SIZED(p, old_size, new_size) stbi_zeroed_realloc(p, old_size, new_size)
#define STBI_FREE(p) std::free(p)
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <stdexcept>

#include "core/errors.h"

namespace psbench {
namespace {

// psbench's bitmap font: printable ASCII from ' ' (32) to '~' (126); each glyph is seven rows of five
// pixels, top to bottom, '#' for ink, and the letters with descenders (g j p q y) an eighth row below the
// baseline.
constexpr const char* kGlyphs[95] = {
    "..... ..... ..... ..... ..... ..... .....",  // space
    "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",  // !
    ".#.#. .#.#. ..... ..... ..... ..... .....",  // "
    ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",  // #
    "..#.. .#### #.#.. .###. ..#.# ####. ..#..",  // $
    "##... ##..# ...#. ..#.. .#... #..## ...##",  // %
    ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",  // &
    "..#.. ..#.. ..... ..... ..... ..... .....",  // '
    "...#. ..#.. .#... .#... .#... ..#.. ...#.",  // (
    ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",  // )
    "..... ..#.. #.#.# .###. #.#.# ..#.. .....",  // *
    "..... ..#.. ..#.. ##### ..#.. ..#.. .....",  // +
    "..... ..... ..... ..... .##.. ..#.. .#...",  // ,
    "..... ..... ..... ##### ..... ..... .....",  // -
    "..... ..... ..... ..... ..... .##.. .##..",  // .
    "..... ....# ...#. ..#.. .#... #.... .....",  // /
    ".###. #...# #..## #.#.# ##..# #...# .###.",  // 0
    "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",  // 1
    ".###. #...# ....# ...#. ..#.. .#... #####",  // 2
    "##### ...#. ..#.. ...#. ....# #...# .###.",  // 3
    "...#. ..##. .#.#. #..#. ##### ...#. ...#.",  // 4
    "##### #.... ####. ....# ....# #...# .###.",  // 5
    "..##. .#... #.... ####. #...# #...# .###.",  // 6
    "##### ....# ...#. ..#.. .#... .#... .#...",  // 7
    ".###. #...# #...# .###. #...# #...# .###.",  // 8
    ".###. #...# #...# .#### ....# ...#. .##..",  // 9
    "..... .##.. .##.. ..... .##.. .##.. .....",  // :
    "..... .##.. .##.. ..... .##.. ..#.. .#...",  // ;
    "...#. ..#.. .#... #.... .#... ..#.. ...#.",  // <
    "..... ..... ##### ..... ##### ..... .....",  // =
    ".#... ..#.. ...#. ....# ...#. ..#.. .#...",  // >
    ".###. #...# ....# ...#. ..#.. ..... ..#..",  // ?
    ".###. #...# ....# .##.# #.#.# #.#.# .###.",  // @
    ".###. #...# #...# ##### #...# #...# #...#",  // A
    "####. #...# #...# ####. #...# #...# ####.",  // B
    ".###. #...# #.... #.... #.... #...# .###.",  // C
    "###.. #..#. #...# #...# #...# #..#. ###..",  // D
    "##### #.... #.... ####. #.... #.... #####",  // E
    "##### #.... #.... ####. #.... #.... #....",  // F
    ".###. #...# #.... #.### #...# #...# .####",  // G
    "#...# #...# #...# ##### #...# #...# #...#",  // H
    ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",  // I
    "..### ...#. ...#. ...#. ...#. #..#. .##..",  // J
    "#...# #..#. #.#.. ##... #.#.. #..#. #...#",  // K
    "#.... #.... #.... #.... #.... #.... #####",  // L
    "#...# ##.## #.#.# #.#.# #...# #...# #...#",  // M
    "#...# #...# ##..# #.#.# #..## #...# #...#",  // N
    ".###. #...# #...# #...# #...# #...# .###.",  // O
    "####. #...# #...# ####. #.... #.... #....",  // P
    ".###. #...# #...# #...# #.#.# #..#. .##.#",  // Q
    "####. #...# #...# ####. #.#.. #..#. #...#",  // R
    ".#### #.... #.... .###. ....# ....# ####.",  // S
    "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",  // T
    "#...# #...# #...# #...# #...# #...# .###.",  // U
    "#...# #...# #...# #...# #...# .#.#. ..#..",  // V
    "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",  // W
    "#...# #...# .#.#. ..#.. .#.#. #...# #...#",  // X
    "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",  // Y
    "##### ....# ...#. ..#.. .#... #.... #####",  // Z
    ".###. .#... .#... .#... .#... .#... .###.",  // [
    "..... #.... .#... ..#.. ...#. ....# .....",  // backslash
    ".###. ...#. ...#. ...#. ...#. ...#. .###.",  // ]
    "..#.. .#.#. #...# ..... ..... ..... .....",  // ^
    "..... ..... ..... ..... ..... ..... #####",  // _
    ".#... ..#.. ..... ..... ..... ..... .....",  // `
    "..... ..... .###. ....# .#### #...# .####",  // a
    "#.... #.... #.##. ##..# #...# #...# ####.",  // b
    "..... ..... .###. #.... #.... #...# .###.",  // c
    "....# ....# .##.# #..## #...# #...# .####",  // d
    "..... ..... .###. #...# ##### #.... .###.",  // e
    "..##. .#..# .#... ###.. .#... .#... .#...",  // f
    "..... ..... .#### #...# #...# .#### ....# .###.",  // g
    "#.... #.... #.##. ##..# #...# #...# #...#",  // h
    "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",  // i
    "...#. ..... ..##. ...#. ...#. ...#. #..#. .##..",  // j
    "#.... #.... #..#. #.#.. ##... #.#.. #..#.",  // k
    ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",  // l
    "..... ..... ##.#. #.#.# #.#.# #...# #...#",  // m
    "..... ..... #.##. ##..# #...# #...# #...#",  // n
    "..... ..... .###. #...# #...# #...# .###.",  // o
    "..... ..... ####. #...# #...# ####. #.... #....",  // p
    "..... ..... .#### #...# #...# .#### ....# ....#",  // q
    "..... ..... #.##. ##..# #.... #.... #....",  // r
    "..... ..... .###. #.... .###. ....# ####.",  // s
    ".#... .#... ###.. .#... .#... .#..# ..##.",  // t
    "..... ..... #...# #...# #...# #..## .##.#",  // u
    "..... ..... #...# #...# #...# .#.#. ..#..",  // v
    "..... ..... #...# #...# #.#.# #.#.# .#.#.",  // w
    "..... ..... #...# .#.#. ..#.. .#.#. #...#",  // x
    "..... ..... #...# #...# #...# .#### ....# .###.",  // y
    "..... ..... ##### ...#. ..#.. .#... #####",  // z
    "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",  // {
    "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",  // |
    ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",  // }
    "..... ..... .#... #.#.# ...#. ..... .....",  // ~
};
constexpr int64_t kCellWidth = 6, kCellHeight = 8, kLineHeight = 10;  // font pixels (before font_scale)

// The ASCII text the font can draw: one '?' per non-ASCII code point, control characters as spaces.
std::string drawable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80) out += (c >= 32 && c < 127) ? static_cast<char>(c) : ' ';
    else if ((c & 0xC0) != 0x80) out += '?';  // the lead byte of a multi-byte sequence
  }
  return out;
}

// Greedy word wrap at spaces into lines of at most `width` characters; a longer word is split.
std::vector<std::string> wrap_text(const std::string& text, int64_t width) {
  width = std::max<int64_t>(1, width);
  std::vector<std::string> lines;
  std::string line, word;
  std::istringstream words(drawable(text));
  while (words >> word) {
    while (static_cast<int64_t>(word.size()) > width) {
      if (!line.empty()) lines.push_back(line), line.clear();
      lines.push_back(word.substr(0, width));
      word.erase(0, width);
    }
    if (word.empty()) continue;
    if (line.empty()) line = word;
    else if (static_cast<int64_t>(line.size() + 1 + word.size()) <= width) line += " " + word;
    else lines.push_back(line), line = word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// A white picture of `channels` channels that text, tiles and the value bar are drawn on.
struct Canvas {
  int64_t height, width, channels;
  std::vector<uint8_t> px;
  Canvas(int64_t h, int64_t w, int64_t c) : height(h), width(w), channels(c), px(static_cast<size_t>(h * w * c), 255) {}
  void set(int64_t y, int64_t x, uint8_t v) {
    if (y < 0 || x < 0 || y >= height || x >= width) return;
    for (int64_t c = 0; c < channels; ++c) px[static_cast<size_t>((y * width + x) * channels + c)] = v;
  }
  void text(int64_t y0, int64_t x0, const std::string& line, int64_t font_scale) {
    const auto ink = text_bitmap(line, font_scale);
    auto a = ink.accessor<uint8_t, 2>();
    for (int64_t y = 0; y < ink.size(0); ++y)
      for (int64_t x = 0; x < ink.size(1); ++x)
        if (a[y][x]) set(y0 + y, x0 + x, 0);
  }
};

}  // namespace

at::Tensor text_bitmap(const std::string& line, int64_t font_scale) {
  if (font_scale < 1) throw std::invalid_argument("text_bitmap: font_scale must be >= 1");
  const std::string s = drawable(line);
  const int64_t n = static_cast<int64_t>(s.size());
  auto out = at::zeros({kCellHeight * font_scale, kCellWidth * font_scale * n}, at::kByte);
  auto a = out.accessor<uint8_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const char* glyph = kGlyphs[static_cast<unsigned char>(s[i]) - 32];
    const int64_t glyph_rows = static_cast<int64_t>(std::char_traits<char>::length(glyph) + 1) / 6;
    for (int64_t row = 0; row < glyph_rows; ++row)
      for (int64_t col = 0; col < 5; ++col) {
        if (glyph[row * 6 + col] != '#') continue;  // rows are five characters and a space
        for (int64_t dy = 0; dy < font_scale; ++dy)
          for (int64_t dx = 0; dx < font_scale; ++dx)
            a[row * font_scale + dy][(i * kCellWidth + col) * font_scale + dx] = 1;
      }
  }
  return out;
}

GridLayout write_png_grid(const std::string& path, const std::vector<at::Tensor>& images, int64_t cols, int64_t pad,
                          int64_t scale, const GridLabels& labels) {
  if (images.empty()) throw std::invalid_argument("write_png_grid: no images");
  int64_t channels = 1, h = 0, w = 0;
  for (const auto& im : images) {
    if (im.dim() != 3) throw std::invalid_argument("write_png_grid: images must be [C, H, W]");
    channels = std::max(channels, im.size(0));
    h = std::max(h, im.size(1) * scale);
    w = std::max(w, im.size(2) * scale);
  }
  if (channels != 1 && channels != 3) throw std::invalid_argument("write_png_grid: 1 or 3 channels expected");
  const int64_t n = static_cast<int64_t>(images.size());
  cols = std::max<int64_t>(1, std::min(cols, n));
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t grid_h = rows * h + (rows + 1) * pad, grid_w = cols * w + (cols + 1) * pad;

  // Text at twice the font's size once tiles are wide enough to hold a short word at that size.
  GridLayout layout;
  const int64_t fs = layout.font_scale = w >= 84 ? 2 : 1;
  const int64_t char_w = kCellWidth * fs, line_h = kLineHeight * fs, margin = 3 * fs;

  // Row names: wrapped to a band left of the grid, wide enough (up to 48 characters) that a name fits
  // beside its row; what still does not fit is cut and ends in '~'.
  std::vector<std::vector<std::string>> row_lines(static_cast<size_t>(rows));
  int64_t left = 0;
  bool any_row_name = false;
  for (const auto& r : labels.row_names) any_row_name = any_row_name || !drawable(r).empty();
  if (any_row_name) {
    const int64_t fit_lines = std::max<int64_t>(1, (h + pad) / line_h);
    int64_t chars = 12;
    for (;; chars += 4) {
      bool fits = true;
      for (int64_t r = 0; r < rows && r < static_cast<int64_t>(labels.row_names.size()); ++r)
        fits = fits && static_cast<int64_t>(wrap_text(labels.row_names[r], chars).size()) <= fit_lines;
      if (fits || chars >= 48) break;
    }
    int64_t used = 0;
    for (int64_t r = 0; r < rows && r < static_cast<int64_t>(labels.row_names.size()); ++r) {
      auto lines = wrap_text(labels.row_names[r], chars);
      if (static_cast<int64_t>(lines.size()) > fit_lines) {
        lines.resize(fit_lines);
        lines.back() = lines.back().substr(0, chars - 1) + "~";
      }
      for (const auto& l : lines) used = std::max<int64_t>(used, l.size());
      row_lines[r] = std::move(lines);
    }
    left = used * char_w + 2 * margin;
  }
  // Column names, wrapped to their tile's width.
  std::vector<std::vector<std::string>> col_lines(static_cast<size_t>(cols));
  int64_t header_lines = 0;
  for (int64_t c = 0; c < cols && c < static_cast<int64_t>(labels.column_names.size()); ++c) {
    col_lines[c] = wrap_text(labels.column_names[c], std::max<int64_t>(1, w / char_w - 1));  // a gap between names
    header_lines = std::max<int64_t>(header_lines, col_lines[c].size());
  }
  const bool bar = !labels.value_bar.empty();
  const int64_t width = std::max(left + grid_w, bar ? left + 24 * char_w : int64_t{0});
  const auto title_lines = wrap_text(labels.title, (width - 2 * margin) / char_w);
  const int64_t title_h = title_lines.empty() ? 0 : static_cast<int64_t>(title_lines.size()) * line_h + margin;
  const int64_t header_h = header_lines * line_h;
  const int64_t top = title_h + header_h + ((title_h + header_h) > 0 ? margin : 0);
  const auto bar_caption = wrap_text(labels.value_bar, (width - 2 * margin) / char_w);
  const int64_t bottom = bar ? margin + line_h + static_cast<int64_t>(bar_caption.size()) * line_h + margin : 0;

  Canvas canvas(top + grid_h + bottom, width, channels);
  layout.height = canvas.height;
  layout.width = canvas.width;
  layout.tile_height = h;
  layout.tile_width = w;
  layout.title_origin = {margin, margin};
  for (size_t i = 0; i < title_lines.size(); ++i)
    canvas.text(margin + static_cast<int64_t>(i) * line_h, margin, title_lines[i], fs);
  for (int64_t c = 0; c < cols; ++c)
    for (size_t i = 0; i < col_lines[c].size(); ++i) {  // centred over the tile
      const int64_t text_w = static_cast<int64_t>(col_lines[c][i].size()) * char_w;
      canvas.text(title_h + static_cast<int64_t>(i) * line_h, left + pad + c * (w + pad) + (w - text_w) / 2,
                  col_lines[c][i], fs);
    }
  for (int64_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < row_lines[r].size(); ++i)
      canvas.text(top + pad + r * (h + pad) + static_cast<int64_t>(i) * line_h, margin, row_lines[r][i], fs);

  for (int64_t i = 0; i < n; ++i) {
    auto im = images[i].detach().to(at::kDouble).cpu();
    if (im.size(0) == 1 && channels == 3) im = im.expand({3, im.size(1), im.size(2)});
    if (scale > 1) im = im.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
    auto px = ((im.clamp(-1, 1) + 1) * 127.5).round().to(at::kByte).contiguous();
    auto acc = px.accessor<uint8_t, 3>();
    // A tile smaller than the largest sits in the middle of its cell, under its column's name.
    const int64_t r0 = top + pad + (i / cols) * (h + pad) + (h - px.size(1)) / 2,
                  c0 = left + pad + (i % cols) * (w + pad) + (w - px.size(2)) / 2;
    layout.tile_origins.emplace_back(r0, c0);
    for (int64_t y = 0; y < px.size(1); ++y)
      for (int64_t x = 0; x < px.size(2); ++x)
        for (int64_t c = 0; c < channels; ++c)
          canvas.px[static_cast<size_t>(((r0 + y) * width + (c0 + x)) * channels + c)] = acc[c][y][x];
  }
  if (bar) {  // "-1 [ramp] 1": the display mapping of pixel values, then the caption
    const int64_t y0 = top + grid_h + margin, x_ramp = left + pad + 3 * char_w, x_end = width - margin - 2 * char_w;
    canvas.text(y0, left + pad, "-1", fs);
    for (int64_t x = x_ramp; x < x_end; ++x) {
      const auto v = static_cast<uint8_t>(std::lround(255.0 * (x - x_ramp) / std::max<int64_t>(1, x_end - 1 - x_ramp)));
      for (int64_t y = y0; y < y0 + kCellHeight * fs - fs; ++y) canvas.set(y, x, v);
    }
    canvas.text(y0, x_end + char_w / 2, "1", fs);
    for (size_t i = 0; i < bar_caption.size(); ++i)
      canvas.text(y0 + line_h * (1 + static_cast<int64_t>(i)), margin, bar_caption[i], fs);
  }
  if (!stbi_write_png(path.c_str(), static_cast<int>(width), static_cast<int>(canvas.height),
                      static_cast<int>(channels), canvas.px.data(), static_cast<int>(width * channels)))
    throw std::runtime_error(path + ": cannot write PNG");
  return layout;
}

namespace {

uint32_t big_endian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Drops the PNG chunks stb_image mishandles and that carry nothing: an empty IDAT (the image data is the
// concatenation of all IDAT payloads, so an empty one adds no byte). When the first IDAT is empty stb_image
// copies zero bytes to a null buffer, undefined behaviour that UBSan reports (tests/fuzz under make sanitize).
// Stops at the first chunk that overruns the file and keeps the rest as it is, for stb_image to refuse.
void drop_empty_idat(std::vector<unsigned char>& bytes) {
  static const unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) return;
  std::vector<unsigned char> out(bytes.begin(), bytes.begin() + 8);
  size_t at = 8;
  while (at + 12 <= bytes.size()) {
    const uint64_t length = big_endian32(&bytes[at]);
    if (length > bytes.size() - at - 12) break;
    const size_t end = at + 12 + static_cast<size_t>(length);
    if (!(length == 0 && std::memcmp(&bytes[at + 4], "IDAT", 4) == 0))
      out.insert(out.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin() + static_cast<std::ptrdiff_t>(end));
    at = end;
  }
  out.insert(out.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.end());
  bytes.swap(out);
}

}  // namespace

at::Tensor decode_image(const std::string& path, int channels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open image file");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw ConfigError(path + ": cannot read image file");
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw ConfigError(path + ": image file of " + std::to_string(bytes.size()) + " bytes is too large to decode");
  drop_empty_idat(bytes);
  int w = 0, h = 0, c = 0;
  unsigned char* data =
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c, channels > 0 ? channels : 0);
  if (!data) throw ConfigError(path + ": cannot decode image (" + std::string(stbi_failure_reason()) + ")");
  const int64_t kept = channels > 0 ? channels : c;
  auto t = at::from_blob(data, {h, w, kept}, at::kByte).clone();
  stbi_image_free(data);
  return t;
}

ImageInfo image_info(const std::string& path) {
  ImageInfo info;
  if (!stbi_info(path.c_str(), &info.width, &info.height, &info.channels))
    throw ConfigError(path + ": cannot read image header (" + std::string(stbi_failure_reason()) + ")");
  return info;
}

at::Tensor read_png(const std::string& path) { return decode_image(path); }

}  // namespace psbench
