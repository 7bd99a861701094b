#include "data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "core/linalg.h"
#include "core/errors.h"
#include "io/png.h"

namespace psbench {

namespace {

bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}
}  // namespace

at::Tensor resize_matrix(int64_t in, int64_t out) {
  if (in < 1 || out < 1) throw std::invalid_argument("resize_matrix: sizes must be positive");
  auto r = at::zeros({out, in}, kF64);
  auto acc = r.accessor<double, 2>();
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  if (out <= in) {
    // Area: output pixel o covers [o scale, (o + 1) scale) of the input axis.
    for (int64_t o = 0; o < out; ++o) {
      const double lo = o * scale, hi = (o + 1) * scale;
      for (int64_t i = static_cast<int64_t>(std::floor(lo)); i < std::min<int64_t>(in, static_cast<int64_t>(std::ceil(hi))); ++i) {
        const double overlap = std::min(hi, i + 1.0) - std::max(lo, static_cast<double>(i));
        if (overlap > 0) acc[o][i] += overlap / scale;
      }
    }
  } else {
    // Bilinear: the centre of output pixel o sits at (o + 0.5) scale - 0.5 in input pixel coordinates.
    for (int64_t o = 0; o < out; ++o) {
      const double c = std::clamp((o + 0.5) * scale - 0.5, 0.0, static_cast<double>(in - 1));
      const int64_t i0 = static_cast<int64_t>(std::floor(c));
      const int64_t i1 = std::min(i0 + 1, in - 1);
      const double f = c - static_cast<double>(i0);
      acc[o][i0] += 1.0 - f;
      acc[o][i1] += f;
    }
  }
  return r;
}

at::Tensor resize_image(const at::Tensor& image, int64_t out_h, int64_t out_w) {
  auto x = image.to(at::kDouble);
  auto rh = resize_matrix(x.size(1), out_h), rw = resize_matrix(x.size(2), out_w);
  return rh.matmul(x).matmul(rw.t()).to(image.scalar_type());  // [C, out_h, in_w] -> [C, out_h, out_w]
}

at::Tensor resize_and_center_crop(const at::Tensor& image, int64_t size) {
  const int64_t h = image.size(1), w = image.size(2);
  int64_t nh = size, nw = size;
  if (h < w) nw = std::max<int64_t>(size, std::llround(static_cast<double>(w) * size / h));
  else nh = std::max<int64_t>(size, std::llround(static_cast<double>(h) * size / w));
  auto r = (nh == h && nw == w) ? image : resize_image(image, nh, nw);
  const int64_t top = (nh - size) / 2, left = (nw - size) / 2;
  return r.slice(1, top, top + size).slice(2, left, left + size).contiguous();
}

ImageFolderDataset::ImageFolderDataset(const std::string& path, int64_t size, int64_t channels)
    : path_(path), size_(size), channels_(channels) {
  if (channels != 1 && channels != 3)
    throw ConfigError("dataset image_folder: channels=" + std::to_string(channels) + " (must be 1 or 3)");
  std::error_code ec;
  if (path.empty()) throw ConfigError("dataset image_folder: option path is required");
  if (!std::filesystem::is_directory(path, ec)) throw ConfigError("dataset image_folder: " + path + ": not a directory");
  for (const auto& e : std::filesystem::directory_iterator(path, ec))
    if (e.is_regular_file() && is_image_file(e.path())) files_.push_back(e.path().string());
  if (ec) throw ConfigError("dataset image_folder: " + path + ": cannot list (" + ec.message() + ")");
  if (files_.empty()) throw ConfigError("dataset image_folder: " + path + ": no .png/.jpg/.jpeg files");
  std::sort(files_.begin(), files_.end());
  if (size_ > 0) {
    shape_ = {channels_, size_, size_};
  } else {
    // Native size: every image must share the first one's size (checked from the headers only).
    int w0 = 0, h0 = 0;
    for (const auto& f : files_) {
      const ImageInfo info = image_info(f);
      const int w = info.width, h = info.height;
      if (w0 == 0) { w0 = w; h0 = h; }
      if (w != w0 || h != h0)
        throw ConfigError(f + ": size " + std::to_string(w) + "x" + std::to_string(h) + " differs from " +
                          std::to_string(w0) + "x" + std::to_string(h0) + " of " + files_.front() +
                          " (set the dataset option size to resize)");
    }
    shape_ = {channels_, h0, w0};
  }
}

at::Tensor ImageFolderDataset::load(int64_t index) const {
  if (index < 0 || index >= static_cast<int64_t>(files_.size()))
    throw ConfigError("dataset image_folder: measurement " + std::to_string(index) + " is beyond the " +
                      std::to_string(files_.size()) + " images in " + path_);
  const std::string& f = files_[static_cast<size_t>(index)];
  auto hwc = decode_image(f, static_cast<int>(channels_));  // uint8 [H, W, channels]
  const int64_t h = hwc.size(0), w = hwc.size(1);
  auto img = hwc.permute({2, 0, 1}).to(at::kDouble) / 127.5 - 1.0;
  if (size_ > 0) img = resize_and_center_crop(img, size_);
  if (img.size(1) != shape_[1] || img.size(2) != shape_[2])
    throw ConfigError(f + ": size " + std::to_string(w) + "x" + std::to_string(h) + " differs from the dataset's " +
                      std::to_string(shape_[2]) + "x" + std::to_string(shape_[1]));
  return img.clamp(-1, 1).to(at::kFloat).contiguous();
}

at::Tensor ImageFolderDataset::ground_truth(int64_t index, const DrawSource&, at::Generator&) const { return load(index); }

namespace {
DatasetRegistrar reg_image_folder(
    {"image_folder",
     "PNG/JPEG images of a directory, sorted by file name, as [channels, size, size] in [-1, 1]; measurement i is "
     "file i",
     {OptionSpec::text("path", "", "directory of .png/.jpg/.jpeg files (required)"),
      OptionSpec::integer("size", 0,
                          "resize the shorter side to size (area average when shrinking, bilinear when enlarging) "
                          "and centre-crop to size x size; 0 keeps the native size")
          .at_least(0),
      OptionSpec::integer("channels", 3, "1 (grey, ITU-R 601 luma by stb_image) or 3 (RGB)").at_least(1).at_most(3)},
     [](const Options& o) -> std::unique_ptr<Dataset> {
       return std::make_unique<ImageFolderDataset>(o.get_string("path"), o.get_int("size"), o.get_int("channels"));
     }});
}  // namespace

}  // namespace psbench
