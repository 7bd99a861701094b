#pragma once
// Shared set-up of the benchmark programs (they build as one translation unit, so each helper exists
// once).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "operators/lowrank.h"
#include "operators/operator.h"
#include "priors/gmm.h"
#include "priors/prior.h"

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

// A registered prior, a task built for it and one measurement y of a draw Phi(z):
//   "gmm80" — the exact Gaussian mixture, d = 80, Phi = 8-step Heun ODE, rank-4 measurement, sigma_y = 0.1;
//   "cm"    — the shipped one-step consistency model (EDM teacher as denoiser), 28x28 Fashion-MNIST,
//             SR x4 by average pooling, sigma_y = 0.1.
struct NeuralOrGmm {
  std::unique_ptr<Prior> prior;
  MeasurementModel model;
  at::Tensor y;
};

// Built once per name; a neural prior that cannot load (no model file) throws.
inline const NeuralOrGmm& setup(const std::string& which) {
  static std::map<std::string, std::unique_ptr<NeuralOrGmm>> cache;
  auto& slot = cache[which];
  if (slot) return *slot;
  auto made = std::make_unique<NeuralOrGmm>();
  auto gen = make_generator(1);
  auto make = [&](const std::string& kind, std::map<std::string, OptionValue> o) {
    const auto& e = PriorRegistry::instance().get(kind, "prior");
    return e.make(resolve_options(kind, e.options, std::move(o)), 1);
  };
  auto task = [&](const std::string& kind, std::map<std::string, OptionValue> o) {
    const auto& e = TaskRegistry::instance().get(kind, "task");
    return e.make(resolve_options(kind, e.options, std::move(o)));
  };
  if (which == "gmm80") {
    made->prior = make("gmm", {{"dim", int64_t{80}}, {"ode_steps", int64_t{8}}});
    made->model = task("gmm_lowrank", {{"d_y", int64_t{4}}, {"sigma_y", 0.1}})->build(made->prior->data_shape(), gen);
  } else {
    made->prior = make("consistency", {{"steps", int64_t{1}}});
    made->model = task("sr_avgpool", {{"factor", int64_t{4}}, {"sigma_y", 0.1}})->build(made->prior->data_shape(), gen);
  }
  at::NoGradGuard no_grad;
  const auto& phi = *made->prior->generator();
  auto x = phi.generate(at::randn(phi.latent_shape(), gen, at::TensorOptions().dtype(made->prior->dtype())).unsqueeze(0));
  made->y = made->model.noise.sample(made->model.op->forward(x), gen);
  slot = std::move(made);
  return *slot;
}

// Minor page faults of the process so far (getrusage).
inline long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Reports the minor page faults per iteration since `start` (a minor_faults() value) as counter "minflt".
inline void report_faults(benchmark::State& state, long start) {
  state.counters["minflt"] = benchmark::Counter(static_cast<double>(minor_faults() - start),
                                                benchmark::Counter::kAvgIterations);
}

}  // namespace psbench::bench
