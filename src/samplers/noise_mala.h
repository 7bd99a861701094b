#pragma once
// Metropolis-adjusted Langevin (MALA) in noise space (ALGORITHMS.md §1, "natural extensions"): the
// Langevin proposal z' = z - h grad U(z) + sqrt(2h) xi on U(z) = prior_scale ||z||^2/2 + R(Phi(z)),
// accepted with the Metropolis-Hastings ratio, so the chain leaves pi(z) ∝ exp(-U(z)) exactly
// invariant (noise-space Langevin without the correction has an O(h) bias). Optional dual-averaging
// adaptation of h per chain toward a target acceptance rate during the first adapt_steps of burn-in.
#include "samplers/sampler.h"

namespace psbench {

struct NoiseMalaOptions {
  int64_t chains = 1;
  int64_t batch_size = 0;          // execution only
  int64_t warm_start_steps = 400;  // Adam on ||y - A(Phi(z))||^2, as noise_langevin
  double warm_start_lr = 5e-3;
  double step_size = 1e-4;         // h (initial value when adapting)
  int64_t burn_in = 0;
  int64_t thinning = 1;
  double prior_scale = 1.0;
  int64_t adapt_steps = 0;         // dual averaging during the first adapt_steps burn-in steps (<= burn_in)
  double target_acceptance = 0.574;
  double divergence_threshold = 1e4;
  static NoiseMalaOptions from(const Options& o);
};

class NoiseMala : public Sampler {
 public:
  explicit NoiseMala(NoiseMalaOptions o) : o_(o) {}
  int64_t num_chains(int64_t num_samples) const override;
  int64_t planned_nfe(int64_t num_samples, const Prior& prior) const override;
  SamplerOutput run(const Problem& problem, int64_t num_samples,
                    const std::vector<uint64_t>& chain_seeds) const override;

 private:
  NoiseMalaOptions o_;
};

// A chain that accepted none of at least this many proposals is stuck at its start (a step size far too
// large for the target): it is marked diverged rather than reported as a point mass.
constexpr int64_t kStuckAfterProposals = 10;

}  // namespace psbench
