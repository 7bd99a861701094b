// Cost of posterior samples on the exact Gaussian mixture: noise-space Langevin (one Phi forward +
// backward per new sample after its warm start) against the exact sampler, in one run so that the
// ratios are meaningful. Counters: NFE per second and samples per second.
#include <benchmark/benchmark.h>

#include "bench_util.h"
#include "samplers/sampler.h"

using namespace psbench;

namespace {

// ODE steps of Phi and the seed base of this program's chains.
constexpr int64_t kSampleOdeSteps = 16;
constexpr uint64_t kSampleSeedBase = 7;

// One chain, warm start excluded: the marginal cost of posterior samples as their number grows.
void BM_NoiseLangevinSamples(benchmark::State& state) {
  bench::GmmSetup s(state.range(0), kSampleOdeSteps);
  Problem problem(s.gmm, s.op, s.noise, s.y);
  auto sampler = make_sampler("noise_langevin", {{"warm_start_steps", int64_t{0}}, {"step_size", 1e-3}});
  const int64_t k = state.range(1);
  int64_t nfe = 0;
  for (auto _ : state) {
    auto out = sampler->run(problem, k, bench::chain_seeds(1, kSampleSeedBase));
    benchmark::DoNotOptimize(out.samples.data_ptr());
    nfe += out.sampling_nfe.total();
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(k * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["NFE/s"] = benchmark::Counter(static_cast<double>(nfe), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NoiseLangevinSamples)->Args({80, 10})->Args({80, 40})->Args({800, 10})->Args({800, 40})
    ->Unit(benchmark::kMillisecond);

// Batched chains: the same number of samples from 8 chains evaluated together.
void BM_NoiseLangevinBatchedChains(benchmark::State& state) {
  bench::GmmSetup s(state.range(0), kSampleOdeSteps);
  Problem problem(s.gmm, s.op, s.noise, s.y);
  auto sampler =
      make_sampler("noise_langevin", {{"chains", int64_t{8}}, {"warm_start_steps", int64_t{0}}, {"step_size", 1e-3}});
  for (auto _ : state) {
    auto out = sampler->run(problem, 40, bench::chain_seeds(8, kSampleSeedBase));
    benchmark::DoNotOptimize(out.samples.data_ptr());
  }
  state.counters["samples/s"] = benchmark::Counter(40.0 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NoiseLangevinBatchedChains)->Arg(80)->Arg(800)->Unit(benchmark::kMillisecond);

// Baseline: exact posterior draws (closed form) for the same problem.
void BM_ExactPosterior(benchmark::State& state) {
  bench::GmmSetup s(state.range(0), kSampleOdeSteps);
  for (auto _ : state) {
    auto post = s.gmm.exact_posterior(s.op, s.noise.sigma_y, s.y);
    auto g = make_generator(3);
    auto x = post->sample(40, g);
    benchmark::DoNotOptimize(x.data_ptr());
  }
  state.counters["samples/s"] = benchmark::Counter(40.0 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ExactPosterior)->Arg(80)->Arg(800)->Unit(benchmark::kMillisecond);

}  // namespace
