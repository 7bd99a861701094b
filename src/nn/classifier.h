#pragma once
// The Fashion-MNIST feature classifier psbench trains itself (`psbench train classifier`) and uses as
// the feature network of its image metrics (Fréchet distance, KID, the LPIPS-formula perceptual
// distance, Vendi score, classifier accuracy). Input [B, 1, 28, 28] in [-1, 1].
//
//   conv1 3x3 1->16, ReLU, maxpool 2   -> [16, 14, 14]   (perceptual layer 1: the ReLU output, 28x28)
//   conv2 3x3 16->32, ReLU, maxpool 2  -> [32, 7, 7]     (perceptual layer 2: 14x14)
//   conv3 3x3 32->64, ReLU, maxpool 2  -> [64, 3, 3]     (perceptual layer 3: 7x7)
//   fc1 576->128, ReLU                 -> features [128] (Fréchet distance / KID / Vendi features)
//   fc2 128->10                        -> logits
#include <torch/torch.h>

#include <string>
#include <vector>

namespace psbench {

inline constexpr int64_t kFmnistCnnFeatureDim = 128;

struct FmnistCnnOutput {
  std::vector<at::Tensor> conv;  // ReLU outputs of conv1..3 (before pooling)
  at::Tensor features;           // [B, 128]
  at::Tensor logits;             // [B, 10]
};

class FmnistCnnImpl : public torch::nn::Module {
 public:
  FmnistCnnImpl();
  at::Tensor forward(const at::Tensor& x);  // logits
  FmnistCnnOutput forward_all(const at::Tensor& x);
  static std::string architecture();  // one line, for manifests and provenance

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(FmnistCnn);

int64_t parameter_count(const torch::nn::Module& m);

}  // namespace psbench
