// The metric computations that scale with the number of samples: SSIM of a batch of image pairs, the
// sliced Wasserstein distance of two point clouds, the Fréchet distance of two feature sets (the distance
// alone; the feature network is a forward pass like any other). Counters: items/s = pairs, points or
// features per second; minflt = minor page faults per iteration.
#include "bench_util.h"
#include "metrics/features.h"
#include "metrics/image_quality.h"
#include "metrics/metric.h"

using namespace psbench;

namespace {

void BM_Ssim(benchmark::State& state) {
  auto gen = make_generator(4);
  const int64_t n = state.range(0);
  auto a = at::rand({n, 1, 28, 28}, gen), b = at::rand({n, 1, 28, 28}, gen);
  const long faults = bench::minor_faults();
  for (auto _ : state) benchmark::DoNotOptimize(ssim(a, b).data_ptr());
  state.SetItemsProcessed(state.iterations() * n);
  bench::report_faults(state, faults);
}
BENCHMARK(BM_Ssim)->Arg(1)->Arg(64)->Arg(1000)->Unit(benchmark::kMillisecond);

// 2000 points against 2000 in dimension d, 100 random directions (psbench's default projections).
void BM_SlicedWasserstein(benchmark::State& state) {
  auto gen = make_generator(5);
  const int64_t d = state.range(0);
  auto a = at::randn({2000, d}, gen), b = at::randn({2000, d}, gen) + 0.1;
  const long faults = bench::minor_faults();
  for (auto _ : state) benchmark::DoNotOptimize(sliced_wasserstein(a, b, 100, gen));
  state.SetItemsProcessed(state.iterations() * 4000);
  bench::report_faults(state, faults);
}
BENCHMARK(BM_SlicedWasserstein)->Arg(8)->Arg(80)->Arg(800)->Unit(benchmark::kMillisecond);

// n features against the 10 000 of a reference set, in dimension d.
void BM_FrechetDistance(benchmark::State& state) {
  auto gen = make_generator(6);
  const int64_t n = state.range(0), d = state.range(1);
  auto a = at::randn({n, d}, gen), b = at::randn({10000, d}, gen);
  const long faults = bench::minor_faults();
  for (auto _ : state) benchmark::DoNotOptimize(frechet_distance(a, b));
  state.SetItemsProcessed(state.iterations() * (n + 10000));
  bench::report_faults(state, faults);
}
BENCHMARK(BM_FrechetDistance)->Args({1000, 64})->Args({1000, 256})->Unit(benchmark::kMillisecond);

}  // namespace
