#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace psbench {

// Writes images in [-1, 1] ([C, H, W] with C = 1 or 3) as a PNG grid with `cols` columns and a
// `pad`-pixel border; values are clipped to [-1, 1] for display only. Throws on I/O failure.
void write_png_grid(const std::string& path, const std::vector<at::Tensor>& images, int64_t cols,
                    int64_t pad = 2, int64_t scale = 1);

// Reads a PNG back as uint8 [H, W, C] (tests).
at::Tensor read_png(const std::string& path);

}  // namespace psbench
