#pragma once
// Neural priors: psbench's own EDM denoiser and consistency model (nn/edm.h model files), and networks
// exported from PyTorch as TorchScript. Networks live on the prior's device; inputs move there and
// outputs come back to the caller's device and dtype.
#include <torch/script.h>

#include "nn/edm.h"
#include "priors/prior.h"

namespace psbench {

// A data file path as given, else relative to the psbench source tree (so shipped models resolve from
// any working directory). ConfigError naming both places when neither exists.
std::string resolve_model_path(const std::string& path);
// "cpu" or "cuda" (ConfigError when CUDA is asked for and absent).
c10::Device parse_device(const std::string& device);

class NetworkDenoiser : public Denoiser {
 public:
  NetworkDenoiser(nn::Preconditioned model, c10::Device device);
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma) const override;
  double sigma_min() const override { return model_->precond().sigma_min; }
  double sigma_max() const override { return model_->precond().sigma_max; }
  double sigma_data() const override { return model_->precond().sigma_data; }

 private:
  mutable nn::Preconditioned model_;
  c10::Device device_;
};

// Multistep consistency sampling with frozen noise (Song et al. 2023, Alg. 1): latent z = (z_0, ..., z_{k-1})
// stacked along channels; x = f(sigma_max z_0, sigma_max); then for i >= 1:
// x = f(x + sqrt(tau_i^2 - sigma_min^2) z_i, tau_i), with tau_i on the Karras grid of k + 1 points
// (rho = 7) from sigma_max towards sigma_min, the last point dropped. k = 1 is Phi(z) = f(sigma_max z, sigma_max).
// Subclasses give the consistency function f; it is also offered as such (the x0 estimate of DPS-CM).
class MultistepConsistency : public Generator, public ConsistencyFunction {
 public:
  MultistepConsistency(Shape data_shape, int64_t steps, double sigma_min, double sigma_max);
  Shape latent_shape() const override;
  at::Tensor generate(const at::Tensor& z) const override;
  int64_t evaluations_per_call() const override { return steps_; }
  const std::vector<double>& times() const { return times_; }

 private:
  Shape shape_;
  int64_t steps_;
  double sigma_min_;
  std::vector<double> times_;
};

// psbench's consistency model (nn/edm.h model file) as f.
class ConsistencyGenerator : public MultistepConsistency {
 public:
  ConsistencyGenerator(nn::Preconditioned model, c10::Device device, Shape data_shape, int64_t steps);
  at::Tensor consistency(const at::Tensor& x, const at::Tensor& sigma) const override;

 private:
  mutable nn::Preconditioned model_;
  c10::Device device_;
};

// Conventions of a TorchScript network, from its sidecar YAML (FILE.yaml next to FILE.pt, or given):
//   kind: denoiser | generator | consistency   # forward(x, sigma) in the EDM convention, forward(z), or
//                                     # forward(x, sigma) = f(x, sigma), a consistency function
//   shape: [C, H, W]                  # data shape (generator: also the latent shape unless latent_shape)
//   latent_shape: [C, H, W]           # optional, generator only
//   sigma_min: 0.002, sigma_max: 80, sigma_data: 0.5   # denoiser and consistency
//   value_range: [-1, 1]              # the network's data range; psbench works in [-1, 1]
//   evaluations_per_call: 1           # generator only: network evaluations inside one forward
struct TorchScriptConventions {
  std::string kind;
  Shape shape, latent_shape;
  double sigma_min = 0.002, sigma_max = 80.0, sigma_data = 0.5;
  double value_lo = -1.0, value_hi = 1.0;
  int64_t evaluations_per_call = 1;
  static TorchScriptConventions load(const std::string& yaml_path);
};

// Loads a TorchScript module and checks its forward signature against the conventions' kind.
torch::jit::Module load_torchscript(const std::string& path, const std::string& kind, c10::Device device);

class TorchScriptDenoiser : public Denoiser {
 public:
  TorchScriptDenoiser(const std::string& path, const TorchScriptConventions& conv, c10::Device device);
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma) const override;
  double sigma_min() const override { return conv_.sigma_min; }
  double sigma_max() const override { return conv_.sigma_max; }
  double sigma_data() const override { return conv_.sigma_data; }

 private:
  mutable torch::jit::Module module_;
  TorchScriptConventions conv_;
  c10::Device device_;
};

// A consistency function exported from PyTorch (e.g. openai/consistency_models' denoise(...)[1]), and the
// multistep (steps >= 1) consistency sampler built on it.
class TorchScriptConsistency : public MultistepConsistency {
 public:
  TorchScriptConsistency(const std::string& path, const TorchScriptConventions& conv, c10::Device device, int64_t steps);
  at::Tensor consistency(const at::Tensor& x, const at::Tensor& sigma) const override;

 private:
  mutable torch::jit::Module module_;
  TorchScriptConventions conv_;
  c10::Device device_;
};

class TorchScriptGenerator : public Generator {
 public:
  TorchScriptGenerator(const std::string& path, const TorchScriptConventions& conv, c10::Device device);
  Shape latent_shape() const override { return conv_.latent_shape; }
  at::Tensor generate(const at::Tensor& z) const override;
  int64_t evaluations_per_call() const override { return conv_.evaluations_per_call; }

 private:
  mutable torch::jit::Module module_;
  TorchScriptConventions conv_;
  c10::Device device_;
};

}  // namespace psbench
