// One step of every registered sampler kernel, timed alone (SingleSteps: chains initialised and moved
// to the sampling phase, then step() repeatedly), on two priors:
//   gmm80  — the exact Gaussian mixture, d = 80, Phi = 8-step Heun ODE (15 evaluations per call),
//            rank-4 measurement, sigma_y = 0.1;
//   cm     — the shipped one-step consistency model (EDM teacher as denoiser) on 28x28 Fashion-MNIST,
//            SR x4 (average pooling), sigma_y = 0.1.
// 8 chains per step. Counters: chain steps per second and NFE per second (forward and forward+backward
// together), so that kernels of different cost per step compare in one run.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <tuple>

#include "bench_util.h"
#include "samplers/sampler.h"

using namespace psbench;

namespace {

constexpr int64_t kChains = 8;

void kernel_step(benchmark::State& state, const std::string& sampler, const std::string& prior,
                 std::map<std::string, OptionValue> options) {
  const bench::NeuralOrGmm* b = nullptr;
  try {
    b = &bench::setup(prior);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  Problem problem(*b->prior, *b->model.op, b->model.noise, b->y);
  auto s = make_sampler(sampler, options);
  std::unique_ptr<SingleSteps> steps;
  try {
    steps = s->single_steps(problem, kChains, 3);
  } catch (const ConfigError& e) {
    state.SkipWithError(e.what());  // the sampler cannot use this prior (e.g. DPS-CM without f)
    return;
  }
  if (!steps) {  // a sampler without a step kernel (pseudo_inverse: one closed-form solve)
    state.SkipWithError("not a step kernel");
    return;
  }
  steps->step();  // first touch outside the timing
  const auto before = steps->nfe().total();
  const long faults = bench::minor_faults();
  for (auto _ : state) steps->step();
  bench::report_faults(state, faults);
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(kChains * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["NFE/s"] = benchmark::Counter(static_cast<double>(steps->nfe().total() - before), benchmark::Counter::kIsRate);
}

// Every registered sampler that is a step kernel, on both priors, at its defaults; DPS also as DPS-CM.
const bool registered = [] {
  std::vector<std::tuple<std::string, std::string, std::map<std::string, OptionValue>>> variants;
  for (const auto& [name, entry] : SamplerRegistry::instance().entries())
    if (name != "exact") variants.emplace_back(name, name, std::map<std::string, OptionValue>{});  // exact: no step
  variants.emplace_back("dps-cm", "dps", std::map<std::string, OptionValue>{{"x0_estimate", std::string("consistency")}});
  for (const auto& [label, name, options] : variants)
    for (const char* prior : {"gmm80", "cm"})
      benchmark::RegisterBenchmark(("BM_KernelStep/" + label + "/" + prior).c_str(), kernel_step, name,
                                   std::string(prior), options)
          ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
