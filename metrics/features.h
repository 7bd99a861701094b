#pragma once
// Feature networks for image metrics, and the distribution distances computed on their features.
//
// The embedded default is psbench's own Fashion-MNIST classifier `fmnist_cnn` (nn/classifier.h, weights
// data/models/fmnist_cnn.pt, trained by `psbench train classifier`). A TorchScript file can stand in
// (e.g. an Inception network for the real FID): its forward(x) takes [N, C, S, S] images in [-1, 1] and
// returns [N, D] features (or, for a perceptual network, a list of [N, C_l, H_l, W_l] layers).
//
// Usage (e.g. the Fréchet distance of generated images against the Fashion-MNIST test split):
//   auto net = load_feature_network();                          // fmnist_cnn, shipped weights
//   auto fa = net->features(images);                            // [N, 1, 28, 28] in [-1, 1] -> [N, 128] double
//   auto fb = fashion_mnist_test_features(*net);                // [10000, 128], cached per process
//   double fd = frechet_distance(fa, fb);
//   KidValue k = kid(fa, fb, /*subsets=*/100, /*subset_size=*/1000, /*seed=*/0);
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace psbench {

struct FeatureNetworkSpec {
  std::string kind = "fmnist_cnn";  // "fmnist_cnn" (C++ weights) or "torchscript"
  std::string path;                 // empty: the default file of the kind (fmnist_cnn only)
  std::string name;                 // display name; default "fmnist_cnn" / the file's stem
  int64_t input_size = 0;           // torchscript: resize images (bilinear) to S x S first; 0 = as is
  int64_t input_channels = 0;       // torchscript: 3 repeats grey images to 3 channels; 0 = as is
};

class FeatureNetwork {
 public:
  virtual ~FeatureNetwork() = default;
  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  const std::string& sha256() const { return sha256_; }
  // Images [N, C, H, W] in [-1, 1] -> features [N, D] (float64), evaluated in batches without gradients.
  virtual at::Tensor features(const at::Tensor& images) const = 0;
  // Layers of the perceptual distance, per image: [N, C_l, H_l, W_l] each.
  virtual std::vector<at::Tensor> layers(const at::Tensor& images) const = 0;
  // Class logits [N, classes]; only classifiers have them.
  virtual bool has_logits() const { return false; }
  virtual at::Tensor logits(const at::Tensor& images) const;
  // The data shape the network accepts ("" if `shape` [C, H, W] is fine, else the reason).
  virtual std::string unsupported(const std::vector<int64_t>& shape) const = 0;

 protected:
  std::string name_, path_, sha256_;
};

// The default weights of fmnist_cnn: $PSBENCH_MODELS_DIR/fmnist_cnn.pt, else
// <source dir>/data/models/fmnist_cnn.pt.
std::string default_fmnist_cnn_path();

// Loads (once per process and spec; thread-safe) and returns the network. A missing or unreadable
// file, or weights that do not fit the architecture, is a ConfigError naming the file.
std::shared_ptr<const FeatureNetwork> load_feature_network(const FeatureNetworkSpec& spec = {});

// Features of the 10000 Fashion-MNIST test images (cached per network and process).
at::Tensor fashion_mnist_test_features(const FeatureNetwork& net,
                                       const std::string& root = "/usr/share/datasets/fashion-mnist");

// Fréchet distance between Gaussians fitted to two feature sets [n, d], [m, d] (unbiased covariances),
// in float64: ||mu_a - mu_b||^2 + Tr S_a + Tr S_b - 2 Tr (S_a^1/2 S_b S_a^1/2)^1/2, square roots by
// symmetric eigen-decomposition (negative round-off eigenvalues clipped to 0).
double frechet_distance(const at::Tensor& feat_a, const at::Tensor& feat_b);
double frechet_distance_moments(const at::Tensor& mu_a, const at::Tensor& cov_a, const at::Tensor& mu_b,
                                const at::Tensor& cov_b);

// Kernel inception distance: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, averaged over `subsets`
// random subsets of min(subset_size, n, m) points of each set (drawn without replacement from `seed`).
struct KidValue {
  double mean = 0, std = 0;  // over subsets
  int64_t subsets = 0, subset_size = 0;
};
KidValue kid(const at::Tensor& feat_a, const at::Tensor& feat_b, int64_t subsets, int64_t subset_size, uint64_t seed);

// The Fréchet-distance reliability rule of the report: fewer samples than twice the feature dimension.
std::string frechet_sample_warning(int64_t n_a, int64_t n_b, int64_t dim);

}  // namespace psbench
