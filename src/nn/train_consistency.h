#pragma once
// Consistency distillation (Song et al. 2023, CD) of an EDM denoiser into a one-step generator
// (psbench train consistency). The student starts from the teacher's weights; at each step, for a random
// grid interval n of the Karras grid sigma_1 = sigma_min < ... < sigma_N = sigma_max (rho 7):
//   x_{n+1} = x_0 + sigma_{n+1} z,  x_hat_n = one Heun step of the teacher's probability-flow ODE to sigma_n,
//   loss = d(f_theta(x_{n+1}, sigma_{n+1}), f_target(x_hat_n, sigma_n)),
// with the target network an EMA of the student (decay target_ema) and d the pseudo-Huber distance
// sqrt(||a - b||^2 + c^2) - c, c = 0.00054 sqrt(dim) (iCT), or squared L2.
#include <string>

#include "nn/training.h"

namespace psbench::nn {

enum class ConsistencyDistance { PseudoHuber, L2 };
// "pseudo_huber" / "l2": the option spelling, also part of the checkpoint fingerprint.
const char* distance_name(ConsistencyDistance d);

struct ConsistencyTraining {
  std::string teacher;  // EDM denoiser model file
  int64_t intervals = 18;
  double target_ema = 0.95;
  ConsistencyDistance distance = ConsistencyDistance::PseudoHuber;
};

// Trains (or resumes) and writes settings.out; progress on stderr. ConfigError when the teacher is not
// an EDM denoiser.
void train_consistency(const TrainSettings& settings, const ConsistencyTraining& config);

}  // namespace psbench::nn
