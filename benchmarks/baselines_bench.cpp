// Cost of one step per sample: a DPS step (one forward+backward of the denoiser on a batch of runs)
// against a noise-space Langevin / MALA step (one forward+backward of Phi = 2*ode_steps-1 denoiser
// evaluations) on the exact Gaussian mixture, d = 80 and 800, 16 runs or chains, 20 steps each.
// Counter "step/s": steps of one sample per second.
#include <benchmark/benchmark.h>

#include "core/rng.h"
#include "operators/lowrank.h"
#include "priors/gmm.h"
#include "samplers/sampler.h"

using namespace psbench;

namespace {

struct Setup {
  GaussianMixture gmm;
  at::Generator gen = make_generator(1);
  LowRankOperator op;
  GaussianNoise noise{0.1};
  at::Tensor y;
  explicit Setup(int64_t dim)
      : gmm([dim] {
          GmmParams p;
          p.dim = dim;
          p.ode_steps = 8;
          return p;
        }(), 1),
        op(dim, 4, gen) {
    y = noise.sample(op.forward(gmm.sample(1, gen)), gen);
  }
};

std::vector<uint64_t> chain_seeds(int64_t n) {
  std::vector<uint64_t> s;
  for (int64_t i = 0; i < n; ++i) s.push_back(derive_seed({9, static_cast<uint64_t>(i)}));
  return s;
}

constexpr int64_t kRuns = 16, kSteps = 20;

void run_steps(benchmark::State& state, const Sampler& sampler, int64_t samples) {
  Setup s(state.range(0));
  Problem problem(s.gmm, s.op, s.noise, s.y);
  for (auto _ : state) {
    auto out = sampler.run(problem, samples, chain_seeds(kRuns));
    benchmark::DoNotOptimize(out.samples.data_ptr());
  }
  state.counters["step/s"] =
      benchmark::Counter(static_cast<double>(kRuns * kSteps * state.iterations()), benchmark::Counter::kIsRate);
}

void BM_DpsStep(benchmark::State& state) {
  auto dps = make_sampler("dps", {{"steps", kSteps}});
  run_steps(state, *dps, kRuns);
}
BENCHMARK(BM_DpsStep)->Arg(80)->Arg(800)->Unit(benchmark::kMillisecond);

void BM_DpsCmStep(benchmark::State& state) {
  auto dps = make_sampler("dps", {{"steps", kSteps}, {"x0_estimate", std::string("consistency")}});
  run_steps(state, *dps, kRuns);
}
BENCHMARK(BM_DpsCmStep)->Arg(80)->Arg(800)->Unit(benchmark::kMillisecond);

void BM_NoiseLangevinStep(benchmark::State& state) {
  auto sampler = make_sampler("noise_langevin", {{"chains", kRuns}, {"warm_start_steps", int64_t{0}},
                                                 {"burn_in", kSteps - 1}, {"step_size", 1e-3}});
  run_steps(state, *sampler, kRuns);
}
BENCHMARK(BM_NoiseLangevinStep)->Arg(80)->Arg(800)->Unit(benchmark::kMillisecond);

void BM_NoiseMalaStep(benchmark::State& state) {
  auto sampler = make_sampler("noise_mala", {{"chains", kRuns}, {"warm_start_steps", int64_t{0}},
                                             {"burn_in", kSteps - 1}, {"step_size", 1e-3}});
  run_steps(state, *sampler, kRuns);
}
BENCHMARK(BM_NoiseMalaStep)->Arg(80)->Arg(800)->Unit(benchmark::kMillisecond);

}  // namespace
