#pragma once
// Shared set-up of the benchmark programs (they build as one translation unit, so each helper exists
// once).
#include <vector>

#include "core/rng.h"
#include "operators/lowrank.h"
#include "priors/gmm.h"

namespace psbench::bench {

// The exact Gaussian mixture of dimension `dim` (Phi = an `ode_steps`-step Heun ODE), a rank-4 random
// measurement with sigma_y = 0.1 and one measurement y of a prior draw.
struct GmmSetup {
  GaussianMixture gmm;
  at::Generator gen = make_generator(1);
  LowRankOperator op;
  GaussianNoise noise{0.1};
  at::Tensor y;
  GmmSetup(int64_t dim, int64_t ode_steps)
      : gmm([dim, ode_steps] {
          GmmParams p;
          p.dim = dim;
          p.ode_steps = ode_steps;
          return p;
        }(), 1),
        op(dim, 4, gen) {
    y = noise.sample(op.forward(gmm.sample(1, gen)), gen);
  }
};

// n chain seeds derived from `base`.
inline std::vector<uint64_t> chain_seeds(int64_t n, uint64_t base) {
  std::vector<uint64_t> s;
  for (int64_t i = 0; i < n; ++i) s.push_back(derive_seed({base, static_cast<uint64_t>(i)}));
  return s;
}

}  // namespace psbench::bench
