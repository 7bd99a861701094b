#pragma once
// Fashion-MNIST-specific pieces of the image metrics (registered as the `fmnist_cnn` feature network
// and the `fashion_mnist_test` reference set; see metrics/features.h).
#include <ATen/ATen.h>

#include <string>

#include "data/fashion_mnist.h"

namespace psbench {

class FeatureNetwork;

// The default weights of fmnist_cnn: $PSBENCH_MODELS_DIR/fmnist_cnn.pt, else
// <source dir>/data/models/fmnist_cnn.pt.
std::string default_fmnist_cnn_path();

// Features of the 10000 Fashion-MNIST test images under `root` (cached per network and process).
at::Tensor fashion_mnist_test_features(const FeatureNetwork& net, const std::string& root = kFashionMnistDefaultRoot);

}  // namespace psbench
