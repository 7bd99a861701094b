#include "io/png.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#include <stdexcept>

namespace psbench {

void write_png_grid(const std::string& path, const std::vector<at::Tensor>& images, int64_t cols, int64_t pad,
                    int64_t scale) {
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
  const int64_t gh = rows * h + (rows + 1) * pad, gw = cols * w + (cols + 1) * pad;
  std::vector<uint8_t> buf(static_cast<size_t>(gh * gw * channels), 255);
  for (int64_t i = 0; i < n; ++i) {
    auto im = images[i].detach().to(at::kDouble).cpu();
    if (im.size(0) == 1 && channels == 3) im = im.expand({3, im.size(1), im.size(2)});
    if (scale > 1) im = im.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
    auto px = ((im.clamp(-1, 1) + 1) * 127.5).round().to(at::kByte).contiguous();
    auto acc = px.accessor<uint8_t, 3>();
    const int64_t r0 = pad + (i / cols) * (h + pad), c0 = pad + (i % cols) * (w + pad);
    for (int64_t y = 0; y < px.size(1); ++y)
      for (int64_t x = 0; x < px.size(2); ++x)
        for (int64_t c = 0; c < channels; ++c)
          buf[static_cast<size_t>(((r0 + y) * gw + (c0 + x)) * channels + c)] = acc[c][y][x];
  }
  if (!stbi_write_png(path.c_str(), static_cast<int>(gw), static_cast<int>(gh), static_cast<int>(channels), buf.data(),
                      static_cast<int>(gw * channels)))
    throw std::runtime_error(path + ": cannot write PNG");
}

at::Tensor read_png(const std::string& path) {
  int w, h, c;
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &c, 0);
  if (!data) throw std::runtime_error(path + ": cannot read image (" + std::string(stbi_failure_reason()) + ")");
  auto t = at::from_blob(data, {h, w, c}, at::kByte).clone();
  stbi_image_free(data);
  return t;
}

}  // namespace psbench
