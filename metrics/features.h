#pragma once
// Feature networks for image metrics, reference image sets, and the distribution distances computed on
// their features.
//
// Networks and reference sets are registry entries (by name), so the metrics here know no dataset and
// no network: psbench's own Fashion-MNIST classifier `fmnist_cnn` and the Fashion-MNIST test split are
// registered by metrics/fmnist_cnn.cpp; `torchscript` (features.cpp) loads any TorchScript file (e.g.
// an Inception network for the real FID): its forward(x) takes [N, C, S, S] images in [-1, 1] and
// returns [N, D] features (or, for a perceptual network, a list of [N, C_l, H_l, W_l] layers).
//
// Usage (e.g. the Fréchet distance of generated images against the Fashion-MNIST test split):
//   auto net = load_feature_network();                          // fmnist_cnn, shipped weights
//   auto fa = net->features(images);                            // [N, 1, 28, 28] in [-1, 1] -> [N, 128] double
//   auto fb = reference_features("fashion_mnist_test", *net);   // [10000, 128], cached per process
//   double fd = frechet_distance(fa, fb);
//   KidValue k = kid(fa, fb, /*subsets=*/100, /*subset_size=*/1000, /*seed=*/0);
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/registry.h"
#include "core/shape.h"

namespace psbench {

struct FeatureNetworkSpec {
  std::string kind = "fmnist_cnn";  // a FeatureNetworkRegistry name: "fmnist_cnn" (C++ weights), "torchscript"
  std::string path;                 // empty: the default file of the kind (if it has one)
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

// A kind of feature network, registered by name (FeatureNetworkSpec::kind).
struct FeatureNetworkEntry {
  std::string name;
  std::string description;
  std::function<std::string()> default_path;  // weights used when the spec gives none; empty: a path is required
  std::function<std::shared_ptr<const FeatureNetwork>(const FeatureNetworkSpec&)> make;  // spec.path resolved
};
using FeatureNetworkRegistry = NamedRegistry<FeatureNetworkEntry>;
using FeatureNetworkRegistrar = NamedRegistrar<FeatureNetworkEntry>;

// Loads (once per process and spec; thread-safe) and returns the network. An unknown kind, a missing or
// unreadable file, or weights that do not fit the architecture, is a ConfigError naming the file.
std::shared_ptr<const FeatureNetwork> load_feature_network(const FeatureNetworkSpec& spec = {});

// A fixed reference image set for per-set metrics (e.g. "fashion_mnist_test"), registered by name.
struct ReferenceSetEntry {
  std::string name;
  std::string description;
  Shape data_shape;  // the shape of its images: the metric's samples must have it too
  std::function<at::Tensor(const FeatureNetwork&)> features;  // [N, D]; may cache per network
};
using ReferenceSetRegistry = NamedRegistry<ReferenceSetEntry>;
using ReferenceSetRegistrar = NamedRegistrar<ReferenceSetEntry>;

// Features of the registered reference set `name` on `net` (ConfigError for an unknown name).
at::Tensor reference_features(const std::string& name, const FeatureNetwork& net);

// For network implementations: runs `f` over `images` in batches of 500 without gradients and
// concatenates each element of its output lists; and the one-line check that a weights file exists.
std::vector<at::Tensor> batched_no_grad(const at::Tensor& images,
                                        const std::function<std::vector<at::Tensor>(const at::Tensor&)>& f);
void check_weights_file(const std::string& path, const std::string& what, const std::string& hint);

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
