// The `fmnist_cnn` feature network (psbench's Fashion-MNIST classifier, nn/classifier.h) and the
// `fashion_mnist_test` reference set, as entries of the feature-network and reference-set registries:
// the only metrics file that knows this dataset and this network.
#include "metrics/fmnist_cnn.h"

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/errors.h"
#include "core/sha256.h"
#include "data/fashion_mnist.h"
#include "metrics/features.h"
#include "nn/classifier.h"

namespace psbench {
namespace {


class FmnistCnnNetwork : public FeatureNetwork {
 public:
  explicit FmnistCnnNetwork(const std::string& path, const std::string& name) {
    const std::string hint = " (train it with `psbench train classifier`, or point network_path / $PSBENCH_MODELS_DIR "
                             "at fmnist_cnn.pt)";
    check_weights_file(path, "fmnist_cnn", hint);
    try {
      torch::load(model_, path);
    } catch (const std::exception& e) {
      throw ConfigError("fmnist_cnn: " + path + ": cannot load the classifier weights: " + first_line(e.what()));
    }
    for (const auto& p : model_->parameters())
      if (!p.isfinite().all().item<bool>()) throw ConfigError("fmnist_cnn: " + path + ": weights are not finite");
    model_->eval();
    model_->to(at::kFloat);
    name_ = name.empty() ? "fmnist_cnn" : name;
    path_ = path;
    sha256_ = sha256_file(path);
  }
  std::string unsupported(const std::vector<int64_t>& shape) const override {
    if (shape != std::vector<int64_t>{1, 28, 28}) return "network fmnist_cnn needs images [1, 28, 28]";
    return "";
  }
  at::Tensor features(const at::Tensor& images) const override {
    return batched_no_grad(prep(images), [&](const at::Tensor& x) { return std::vector<at::Tensor>{model_->forward_all(x).features}; })[0]
        .to(at::kDouble);
  }
  std::vector<at::Tensor> layers(const at::Tensor& images) const override {
    return batched_no_grad(prep(images), [&](const at::Tensor& x) { return model_->forward_all(x).conv; });
  }
  bool has_logits() const override { return true; }
  at::Tensor logits(const at::Tensor& images) const override {
    return batched_no_grad(prep(images), [&](const at::Tensor& x) { return std::vector<at::Tensor>{model_->forward(x)}; })[0];
  }

 private:
  static at::Tensor prep(const at::Tensor& images) { return images.to(at::kFloat).contiguous(); }
  mutable FmnistCnn model_;  // forward() is not const in torch::nn
};

}  // namespace

std::string default_fmnist_cnn_path() {
  if (const char* dir = std::getenv("PSBENCH_MODELS_DIR"); dir && *dir)
    return (std::filesystem::path(dir) / "fmnist_cnn.pt").string();
  return std::string(PSBENCH_SOURCE_DIR) + "/data/models/fmnist_cnn.pt";
}

at::Tensor fashion_mnist_test_features(const FeatureNetwork& net, const std::string& root) {
  static std::mutex mutex;
  static std::map<std::string, at::Tensor> cache;
  const std::string key = net.sha256() + "|" + net.name() + "|" + root;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto split = load_fashion_mnist(root, "test");
  return cache[key] = net.features(fashion_mnist_to_float(split->images).unsqueeze(1));
}

namespace {

FeatureNetworkRegistrar reg_network(
    {"fmnist_cnn", "psbench's Fashion-MNIST classifier (psbench train classifier): 128-d features, conv layers, logits",
     default_fmnist_cnn_path,
     [](const FeatureNetworkSpec& spec) { return std::make_shared<FmnistCnnNetwork>(spec.path, spec.name); }});

ReferenceSetRegistrar reg_reference({"fashion_mnist_test", "the 10000 Fashion-MNIST test images", {1, 28, 28},
                                     [](const FeatureNetwork& net) { return fashion_mnist_test_features(net); }});

}  // namespace
}  // namespace psbench
