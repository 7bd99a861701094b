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

#include "core/rng.h"
#include "operators/operator.h"
#include "priors/prior.h"
#include "samplers/sampler.h"

using namespace psbench;

namespace {

constexpr int64_t kChains = 8;

struct Bench {
  std::unique_ptr<Prior> prior;
  MeasurementModel model;
  at::Tensor y;
};

// Built once per prior; a neural prior that cannot load (no model file) is reported as an error.
const Bench& bench(const std::string& which) {
  static std::map<std::string, std::unique_ptr<Bench>> cache;
  auto& slot = cache[which];
  if (slot) return *slot;
  slot = std::make_unique<Bench>();
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
    slot->prior = make("gmm", {{"dim", int64_t{80}}, {"ode_steps", int64_t{8}}});
    slot->model = task("gmm_lowrank", {{"d_y", int64_t{4}}, {"sigma_y", 0.1}})->build(slot->prior->data_shape(), gen);
  } else {
    slot->prior = make("consistency", {{"steps", int64_t{1}}});
    slot->model = task("sr_avgpool", {{"factor", int64_t{4}}, {"sigma_y", 0.1}})->build(slot->prior->data_shape(), gen);
  }
  at::NoGradGuard no_grad;
  const auto& phi = *slot->prior->generator();
  auto x = phi.generate(at::randn(phi.latent_shape(), gen, at::TensorOptions().dtype(slot->prior->dtype())).unsqueeze(0));
  slot->y = slot->model.noise.sample(slot->model.op->forward(x), gen);
  return *slot;
}

void kernel_step(benchmark::State& state, const std::string& sampler, const std::string& prior,
                 std::map<std::string, OptionValue> options) {
  const Bench* b = nullptr;
  try {
    b = &bench(prior);
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
  steps->step();  // first touch outside the timing
  const auto before = steps->nfe().total();
  for (auto _ : state) steps->step();
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
