#pragma once
// EDM preconditioning around the UNet (Karras et al. 2022) and the consistency-model variant (Song et
// al. 2023), plus the on-disk model format shared by the trainers and the neural priors.
//   denoiser:    D(x, s) = c_skip x + c_out F(c_in x, ln(s)/4), c_skip = sd^2/(s^2+sd^2),
//                c_out = s sd / sqrt(s^2+sd^2), c_in = 1/sqrt(s^2+sd^2)
//   consistency: f(x, s) likewise with c_skip = sd^2/((s-s_min)^2+sd^2),
//                c_out = sd (s-s_min)/sqrt(s^2+sd^2), so that f(x, s_min) = x exactly.
#include <map>
#include <string>

#include "nn/unet.h"

namespace psbench::nn {

enum class Parameterization { Denoiser, Consistency };
std::string to_string(Parameterization p);

struct PrecondConfig {
  Parameterization kind = Parameterization::Denoiser;
  double sigma_data = 0.5, sigma_min = 0.002, sigma_max = 80.0;
};

class PreconditionedImpl : public torch::nn::Module {
 public:
  PreconditionedImpl(UNetConfig unet, PrecondConfig precond);
  // x: [B, C, H, W] any floating dtype (the network runs in float32); sigma: [B]. Same dtype as x out.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& sigma);
  const PrecondConfig& precond() const { return precond_; }
  UNet& net() { return net_; }
  const UNetConfig& unet_config() const { return net_->config(); }

 private:
  PrecondConfig precond_;
  UNet net_{nullptr};
};
TORCH_MODULE(Preconditioned);

// A model file: the preconditioned network's weights plus what is needed to rebuild it, and free-form
// metadata (training command, steps...). Written atomically (temporary file + rename).
struct ModelFile {
  Preconditioned model{nullptr};
  std::map<std::string, std::string> meta;
};
void save_model(const std::string& path, Preconditioned& model, const std::map<std::string, std::string>& meta);
// Throws ConfigError naming the file when it is missing, not a psbench model, or inconsistent.
ModelFile load_model(const std::string& path);

// Copies parameters and buffers of `from` into `to` (same architecture).
void copy_weights(torch::nn::Module& to, const torch::nn::Module& from);
// to <- decay * to + (1 - decay) * from, parameters only (buffers copied).
void ema_update(torch::nn::Module& to, const torch::nn::Module& from, double decay);

}  // namespace psbench::nn
