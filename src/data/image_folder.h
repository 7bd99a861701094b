#pragma once
// The `image_folder` dataset: PNG/JPEG files of a directory (sorted by name), decoded with stb_image,
// resized (shorter side -> size) and centre-cropped to size x size, as [C, size, size] in [-1, 1].
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "data/dataset.h"

namespace psbench {

// Resampling matrix [out, in] for one axis: area averaging (each output pixel is the mean of the input
// interval it covers, partial pixels weighted by overlap) when shrinking, bilinear interpolation with
// half-pixel centres (edges clamped) when enlarging. Rows sum to one.
at::Tensor resize_matrix(int64_t in, int64_t out);
// [C, H, W] -> [C, out_h, out_w] with separable resize_matrix along both axes (float64 inside).
at::Tensor resize_image(const at::Tensor& image, int64_t out_h, int64_t out_w);
// Shorter side -> size (aspect ratio kept, the longer side rounded), then the central size x size crop.
at::Tensor resize_and_center_crop(const at::Tensor& image, int64_t size);

class ImageFolderDataset : public Dataset {
 public:
  // size 0 keeps the native size (then every image must have the same size).
  ImageFolderDataset(const std::string& path, int64_t size, int64_t channels);
  bool uses_prior() const override { return false; }
  Shape shape(const DrawSource&) const override { return shape_; }
  at::Tensor ground_truth(int64_t index, const DrawSource& prior, at::Generator& gen) const override;
  const std::vector<std::string>& files() const { return files_; }
  // Image `index` as float32 [C, size, size] in [-1, 1].
  at::Tensor load(int64_t index) const;

 private:
  std::string path_;
  int64_t size_, channels_;
  std::vector<std::string> files_;
  Shape shape_;
};

}  // namespace psbench
