#pragma once
// Fashion-MNIST from Debian's `dataset-fashion-mnist` package: gzip-compressed IDX files
// (train|t10k)-(images-idx3|labels-idx1)-ubyte.gz under a root directory. Splits are loaded once per
// process (per root) and shared.
#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "data/dataset.h"

namespace psbench {

inline constexpr const char* kFashionMnistDefaultRoot = "/usr/share/datasets/fashion-mnist";
inline constexpr int64_t kFashionMnistClasses = 10;
inline constexpr const char* kFashionMnistClassNames[kFashionMnistClasses] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

struct FashionMnistSplit {
  at::Tensor images;  // uint8 [N, 28, 28], raw pixel values 0..255
  at::Tensor labels;  // int64 [N], 0..9
  int64_t size() const { return images.size(0); }
};

// Reads one images/labels pair of gzip IDX files, validating magic numbers (2051 images, 2049 labels),
// dimensions (28 x 28), counts (equal, and equal to the data actually present: no short or trailing
// data) and label range. Every problem is a ConfigError naming the file; a missing file names the
// Debian package.
FashionMnistSplit read_fashion_mnist_files(const std::string& images_path, const std::string& labels_path);

// The split "train" or "test" under `root`, loaded once per process and then shared (thread-safe).
std::shared_ptr<const FashionMnistSplit> load_fashion_mnist(const std::string& root, const std::string& split);

// Pixels as float in [-1, 1]: x / 127.5 - 1. uint8 [..., 28, 28] -> `dtype` [..., 28, 28].
at::Tensor fashion_mnist_to_float(const at::Tensor& images, at::ScalarType dtype = at::kFloat);

// The `fashion_mnist` dataset: measurement index i -> image offset + i of the split, as [1, 28, 28].
class FashionMnistDataset : public Dataset {
 public:
  FashionMnistDataset(const std::string& root, const std::string& split, int64_t offset);
  bool uses_prior() const override { return false; }
  Shape shape(const DrawSource&) const override { return {1, 28, 28}; }
  at::Tensor ground_truth(int64_t index, const DrawSource& prior, at::Generator& gen) const override;
  // Class label (0..9) of the image behind measurement `index` (for classifier-accuracy metrics).
  bool has_labels() const override { return true; }
  int64_t label(int64_t index) const override;
  int64_t size() const { return data_->size(); }
  const FashionMnistSplit& split() const { return *data_; }

 private:
  int64_t position(int64_t index) const;
  std::string split_name_;
  int64_t offset_;
  std::shared_ptr<const FashionMnistSplit> data_;
};

}  // namespace psbench
