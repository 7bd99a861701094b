#include "nn/classifier.h"

namespace psbench {

namespace {
torch::nn::Conv2d conv3x3(int64_t in, int64_t out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
}
}  // namespace

FmnistCnnImpl::FmnistCnnImpl() {
  conv1_ = register_module("conv1", conv3x3(1, 16));
  conv2_ = register_module("conv2", conv3x3(16, 32));
  conv3_ = register_module("conv3", conv3x3(32, 64));
  fc1_ = register_module("fc1", torch::nn::Linear(64 * 3 * 3, kFmnistCnnFeatureDim));
  fc2_ = register_module("fc2", torch::nn::Linear(kFmnistCnnFeatureDim, 10));
}

FmnistCnnOutput FmnistCnnImpl::forward_all(const at::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != 1 || x.size(2) != 28 || x.size(3) != 28)
    throw std::invalid_argument("fmnist_cnn: expects images [B, 1, 28, 28], got " + std::to_string(x.dim()) +
                                "-d input");
  FmnistCnnOutput out;
  auto h = torch::relu(conv1_->forward(x));
  out.conv.push_back(h);
  h = torch::relu(conv2_->forward(torch::max_pool2d(h, 2)));
  out.conv.push_back(h);
  h = torch::relu(conv3_->forward(torch::max_pool2d(h, 2)));
  out.conv.push_back(h);
  h = torch::max_pool2d(h, 2).flatten(1);
  out.features = torch::relu(fc1_->forward(h));
  out.logits = fc2_->forward(out.features);
  return out;
}

at::Tensor FmnistCnnImpl::forward(const at::Tensor& x) { return forward_all(x).logits; }

std::string FmnistCnnImpl::architecture() {
  return "conv3x3(1->16)+ReLU+maxpool2, conv3x3(16->32)+ReLU+maxpool2, conv3x3(32->64)+ReLU+maxpool2, "
         "fc(576->128)+ReLU [features], fc(128->10) [logits]; input [B,1,28,28] in [-1,1]";
}

int64_t parameter_count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace psbench
