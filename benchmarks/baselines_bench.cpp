// Cost of one step per sample: a DPS step (one forward+backward of the denoiser on a batch of runs)
// against a noise-space Langevin / MALA step (one forward+backward of Phi = 2*ode_steps-1 denoiser
// evaluations) on the exact Gaussian mixture, d = 80 and 800, 16 runs or chains, 20 steps each.
// Counter "step/s": steps of one sample per second.
#include <benchmark/benchmark.h>

#include "bench_util.h"
#include "samplers/sampler.h"

using namespace psbench;

namespace {

// ODE steps of Phi and the seed base of this program's chains.
constexpr int64_t kStepOdeSteps = 8;
constexpr uint64_t kStepSeedBase = 9;

constexpr int64_t kRuns = 16, kSteps = 20;

void run_steps(benchmark::State& state, const Sampler& sampler, int64_t samples) {
  bench::GmmSetup s(state.range(0), kStepOdeSteps);
  Problem problem(s.gmm, s.op, s.noise, s.y);
  for (auto _ : state) {
    auto out = sampler.run(problem, samples, bench::chain_seeds(kRuns, kStepSeedBase));
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
