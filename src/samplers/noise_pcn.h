#pragma once
// Preconditioned Crank–Nicolson in noise space (ALGORITHMS.md §1, "natural extensions"):
// z' = sqrt(1 - beta^2) z + beta xi leaves N(0, I) invariant, so accepting with the likelihood ratio
// min(1, exp(R(Phi(z)) - R(Phi(z')))) makes pi(z) ∝ N(z; 0, I) exp(-R(Phi(z))) exactly invariant, with an
// acceptance rate that does not degrade with the dimension of z. Needs only forward passes of Phi
// (the optional Adam warm start uses gradients). Optional dual averaging of beta per chain during burn-in.
#include "samplers/sampler.h"

namespace psbench {

struct NoisePcnOptions {
  int64_t chains = 1;
  int64_t batch_size = 0;  // execution only
  int64_t warm_start_steps = 400;
  double warm_start_lr = 5e-3;
  double beta = 0.1;
  int64_t burn_in = 0;
  int64_t thinning = 1;
  int64_t adapt_steps = 0;  // dual averaging of beta during the first adapt_steps burn-in steps (<= burn_in)
  double target_acceptance = 0.25;
  double divergence_threshold = 1e4;
  static NoisePcnOptions from(const Options& o);
};

class NoisePcn : public Sampler {
 public:
  explicit NoisePcn(NoisePcnOptions o) : o_(o) {}
  int64_t num_chains(int64_t num_samples) const override;
  int64_t planned_nfe(int64_t num_samples, const Prior& prior) const override;
  SamplerOutput run(const Problem& problem, int64_t num_samples,
                    const std::vector<uint64_t>& chain_seeds) const override;

 private:
  NoisePcnOptions o_;
};

}  // namespace psbench
