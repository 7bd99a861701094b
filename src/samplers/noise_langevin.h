#pragma once
// Noise-space Langevin dynamics (ALGORITHMS.md §1): unadjusted Langevin on the noise z of a
// deterministic generator Phi, targeting pi(z) ∝ N(z; 0, I)^prior_scale · exp(-R(Phi(z))).
#include "samplers/sampler.h"

namespace psbench {

struct NoiseLangevinOptions {
  int64_t chains = 1;              // independent chains; samples_per_measurement must divide evenly
  int64_t batch_size = 0;          // chains evaluated together (0 = all); never changes results
  int64_t warm_start_steps = 400;  // K Adam steps on ||y - A(Phi(z))||^2 (no prior term)
  double warm_start_lr = 5e-3;
  double step_size = 1e-4;         // tau
  int64_t burn_in = 0;             // chain steps discarded after the warm start
  int64_t thinning = 1;            // keep every thinning-th iterate
  double prior_scale = 1.0;        // 1 = the stated target; 1/sigma_max^2 reproduces the official code
  // A chain whose mean squared noise coordinate ||z||^2/dim exceeds this (z ~ N(0, I) has ~1) has left
  // any plausible region of the target and is stopped as diverged, as is a non-finite one.
  double divergence_threshold = 1e4;
  static NoiseLangevinOptions from(const Options& o);
};

class NoiseLangevin : public Sampler {
 public:
  explicit NoiseLangevin(NoiseLangevinOptions o) : o_(o) {}
  int64_t num_chains(int64_t num_samples) const override;
  int64_t planned_nfe(int64_t num_samples, const Prior& prior) const override;
  SamplerOutput run(const Problem& problem, int64_t num_samples,
                    const std::vector<uint64_t>& chain_seeds) const override;

 private:
  NoiseLangevinOptions o_;
};

}  // namespace psbench
