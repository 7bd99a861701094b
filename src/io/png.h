#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace psbench {

// What a grid PNG says about itself, drawn inside the picture (psbench's own 5x7 bitmap font, ASCII; other
// characters print as '?'): a title over the grid (wrapped to its width), a name over each column, a name left
// of each row (both wrapped), and a value bar under the grid: the grey ramp from -1 to 1 that the pixels are
// mapped to, with its caption. Empty fields draw nothing; with no labels at all the PNG is the bare grid.
struct GridLabels {
  std::string title;
  std::vector<std::string> column_names;  // one per grid column (missing ones unnamed)
  std::vector<std::string> row_names;     // one per grid row
  std::string value_bar;                  // caption of the value bar; empty: no bar
};

// Where write_png_grid put things: the PNG's size and the top-left pixel (row, column) of each tile.
struct GridLayout {
  int64_t height = 0, width = 0, tile_height = 0, tile_width = 0, font_scale = 1;
  std::vector<std::pair<int64_t, int64_t>> tile_origins;
  std::pair<int64_t, int64_t> title_origin{0, 0};  // top-left of the title's first line
};

// Writes images in [-1, 1] ([C, H, W] with C = 1 or 3) as a PNG grid with `cols` columns and a
// `pad`-pixel border; values are clipped to [-1, 1] for display only. Throws on I/O failure.
GridLayout write_png_grid(const std::string& path, const std::vector<at::Tensor>& images, int64_t cols,
                          int64_t pad = 2, int64_t scale = 1, const GridLabels& labels = {});

// One line of text in the bitmap font as ink (1) and paper (0), uint8 [8 * font_scale, 6 * font_scale * chars]:
// each character a 6x8 cell (a 5x7 glyph, one blank column and row; g j p q y descend into that row),
// enlarged font_scale times.
at::Tensor text_bitmap(const std::string& line, int64_t font_scale = 1);

// Decodes a PNG or JPEG file (stb_image) as uint8 [H, W, C]: C is the file's channel count, or `channels`
// (1 to 4) when positive. A file that cannot be read or decoded is a ConfigError naming it.
at::Tensor decode_image(const std::string& path, int channels = 0);

// Width, height and channel count from an image file's header; ConfigError naming the file when unreadable.
struct ImageInfo {
  int width = 0, height = 0, channels = 0;
};
ImageInfo image_info(const std::string& path);

// Reads a PNG back as uint8 [H, W, C] (tests, show-task --image): decode_image with the file's channels.
at::Tensor read_png(const std::string& path);

}  // namespace psbench
