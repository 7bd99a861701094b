#pragma once
// A compact UNet F(x, c_noise) for small images (Fashion-MNIST 28x28), the raw network inside the EDM
// denoiser and the consistency model (nn/edm.h adds the preconditioning). Levels halve the resolution
// (28 -> 14 -> 7); each level has `blocks` residual blocks on the way down and blocks + 1 on the way up
// (with skip connections), the noise level enters every block through a Fourier embedding, and the
// lowest resolution has single-head self-attention.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace psbench::nn {

struct UNetConfig {
  int64_t channels = 1;                // image channels
  int64_t base = 32;                   // feature channels at full resolution
  std::vector<int64_t> mult = {1, 2, 2};  // channel multiplier per level
  int64_t blocks = 2;                  // residual blocks per level (down path)
  int64_t embedding = 128;             // noise-embedding width
  bool attention = true;               // self-attention at the lowest resolution

  std::string to_string() const;       // "channels=1 base=32 mult=1,2,2 blocks=2 embedding=128 attention=1"
  static UNetConfig from_string(const std::string& s);  // inverse of to_string (ConfigError on junk)
};

class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int64_t in, int64_t out, int64_t embedding);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);

 private:
  torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, skip_{nullptr};
  torch::nn::Linear emb_{nullptr};
};
TORCH_MODULE(ResBlock);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::GroupNorm norm_{nullptr};
  torch::nn::Conv2d qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(Attention);

class UNetImpl : public torch::nn::Module {
 public:
  explicit UNetImpl(UNetConfig config);
  // x: [B, C, H, W] (H, W divisible by 2^(levels-1)); c_noise: [B]. Returns [B, C, H, W].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c_noise);
  const UNetConfig& config() const { return config_; }
  int64_t parameter_count() const;

 private:
  UNetConfig config_;
  torch::Tensor frequencies_;  // buffer: Fourier frequencies of the noise embedding
  torch::nn::Linear emb1_{nullptr}, emb2_{nullptr};
  torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  torch::nn::GroupNorm norm_out_{nullptr};
  std::vector<ResBlock> down_, up_, mid_;
  std::vector<torch::nn::Conv2d> downsample_, upsample_;
  Attention mid_attention_{nullptr};
  std::vector<Attention> down_attention_, up_attention_;
};
TORCH_MODULE(UNet);

}  // namespace psbench::nn
