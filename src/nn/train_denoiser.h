#pragma once
// EDM denoiser training on Fashion-MNIST (psbench train denoiser): UNet + EDM preconditioning, the EDM
// loss with ln sigma ~ N(p_mean, p_std^2) and weight (sigma^2 + sd^2) / (sigma sd)^2, EMA weights.
#include "nn/training.h"
#include "nn/unet.h"

namespace psbench::nn {

struct DenoiserTraining {
  UNetConfig unet;
  double p_mean = -1.2, p_std = 1.2, sigma_data = 0.5;
};

// Trains (or resumes) and writes settings.out; progress on stderr.
void train_denoiser(const TrainSettings& settings, const DenoiserTraining& config);

}  // namespace psbench::nn
