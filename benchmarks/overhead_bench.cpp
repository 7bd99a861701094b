// What psbench's loops add to the network calls they make, and how batching chains scales (issue 13's
// targets: a noise-space Langevin chain step within 1.05x of a raw forward+backward of Phi, a DPS step
// within 1.05x of a raw forward+backward of the denoiser, at the same batch size). On the shipped
// consistency model (bench::setup("cm"): Phi = one consistency step, the EDM teacher as denoiser, SR x4):
//   BM_PhiForwardBackward/B/T        raw: z [B] -> Phi(z) -> d/dz sum Phi(z)^2, T intra-op threads
//   BM_NoiseLangevinKernelStep/B/T   one step of B noise-space Langevin chains (the kernel alone)
//   BM_NoiseLangevinRun/B            Sampler::run of B chains, 16 samples each, no warm start: the whole
//                                    driver (sample storage, divergence checks), per batched step
//   BM_DenoiserForwardBackward/B/T   raw: x [B] -> D(x, sigma = 1) -> d/dx sum D^2
//   BM_DpsKernelStep/B/T             one DPS-DM step of B runs
//   BM_DpsRun/B                      Sampler::run of B DPS-DM runs of 100 steps, per batched step
//   BM_PairedNoiseLangevin/B, BM_PairedDps/B   the same three at one thread, alternating inside every
//                                    iteration (n raw calls, n kernel steps, one run of n steps; n = 16
//                                    chain steps, 20 DPS steps), at least 4 s per repetition, so that
//                                    the machine's drift (up to +-30% between benchmarks minutes apart here)
//                                    cancels in their ratios: counters kernel_ratio and run_ratio
// items/s counts batched steps (one network call each), so the ratio of two rows at the same B and T is
// the ratio of their times per call; tools/bench_ratios.py prints those ratios from the JSON of one run.
// Counters: minflt = minor page faults per iteration (the allocator's share, docs/PERFORMANCE.md).
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <functional>

#include "bench_util.h"
#include "core/threads.h"
#include "samplers/sampler.h"

using namespace psbench;

namespace {

constexpr int64_t kRunSamplesPerChain = 16;
constexpr int64_t kDpsRunSteps = 100;
constexpr int64_t kPairedDpsSteps = 20;  // paired: 3 x 20 calls per iteration, so that iterations repeat

// The "cm" set-up, or the benchmark skipped with the reason (no model file).
const bench::NeuralOrGmm* cm_or_skip(benchmark::State& state) {
  try {
    return &bench::setup("cm");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

// Intra-op threads (LibTorch's; OpenBLAS on one thread, core/threads.h) for one benchmark, restored to one afterwards
// (psbench runs use --threads).
struct Threads {
  explicit Threads(int64_t n) { set_compute_threads(static_cast<int>(n)); }
  ~Threads() { set_compute_threads(1); }
};

// Runs `call` once untimed, then timed; one batched network call (or step) per iteration.
template <class F>
void timed_calls(benchmark::State& state, F&& call, int64_t calls_per_iteration = 1) {
  call();
  const long faults = bench::minor_faults();
  for (auto _ : state) call();
  state.SetItemsProcessed(state.iterations() * calls_per_iteration);
  bench::report_faults(state, faults);
}

// One raw forward+backward of Phi on a batch of `batch` latents: z -> Phi(z) -> d/dz sum Phi(z)^2.
std::function<void()> phi_call(const bench::NeuralOrGmm& b, int64_t batch) {
  const auto& phi = *b.prior->generator();
  Shape shape = phi.latent_shape();
  shape.insert(shape.begin(), batch);
  auto gen = make_generator(2);
  auto z = at::randn(shape, gen);
  return [&phi, z] {
    at::AutoGradMode grad_mode(true);
    auto leaf = z.detach().requires_grad_(true);
    auto g = torch::autograd::grad({phi.generate(leaf).pow(2).sum()}, {leaf})[0];
    benchmark::DoNotOptimize(g.data_ptr());
  };
}

// One raw forward+backward of the denoiser at sigma = 1 on a batch of `batch` images; empty if none.
std::function<void()> denoiser_call(const bench::NeuralOrGmm& b, int64_t batch) {
  const auto* den = b.prior->denoiser();
  if (!den) return {};
  Shape shape = b.prior->data_shape();
  shape.insert(shape.begin(), batch);
  auto gen = make_generator(3);
  auto x = at::randn(shape, gen);
  auto sigma = at::ones({batch});
  return [den, x, sigma] {
    at::AutoGradMode grad_mode(true);
    auto leaf = x.detach().requires_grad_(true);
    auto g = torch::autograd::grad({den->denoise(leaf, sigma).pow(2).sum()}, {leaf})[0];
    benchmark::DoNotOptimize(g.data_ptr());
  };
}

void BM_PhiForwardBackward(benchmark::State& state) {
  const auto* b = cm_or_skip(state);
  if (!b) return;
  Threads threads(state.range(1));
  timed_calls(state, phi_call(*b, state.range(0)));
}

void BM_DenoiserForwardBackward(benchmark::State& state) {
  const auto* b = cm_or_skip(state);
  if (!b) return;
  Threads threads(state.range(1));
  auto call = denoiser_call(*b, state.range(0));
  if (!call) return state.SkipWithError("the consistency prior has no denoiser");
  timed_calls(state, call);
}

void kernel_steps(benchmark::State& state, const std::string& sampler, std::map<std::string, OptionValue> options) {
  const auto* b = cm_or_skip(state);
  if (!b) return;
  Threads threads(state.range(1));
  Problem problem(*b->prior, *b->model.op, b->model.noise, b->y);
  auto s = make_sampler(sampler, std::move(options));  // outlives the steps, which refer to its kernel
  auto steps = s->single_steps(problem, state.range(0), 5);
  if (!steps) return state.SkipWithError("not a step kernel");
  timed_calls(state, [&] { steps->step(); });
}

void BM_NoiseLangevinKernelStep(benchmark::State& state) {
  kernel_steps(state, "noise_langevin", {{"step_size", 1e-5}});
}

void BM_DpsKernelStep(benchmark::State& state) { kernel_steps(state, "dps", {}); }

// One Sampler::run of `chains` chains (or independent runs, batched together) with samples_per_chain each.
std::function<void()> run_call(const Sampler& s, const Problem& problem, int64_t chains, int64_t samples_per_chain) {
  return [&s, &problem, chains, samples_per_chain] {
    auto out = s.run(problem, chains * samples_per_chain, bench::chain_seeds(chains, 11));
    benchmark::DoNotOptimize(out.samples.data_ptr());
  };
}

// Sampler::run of state.range(0) chains at one thread, timed per batched step.
void whole_runs(benchmark::State& state, const std::string& sampler, const std::map<std::string, OptionValue>& options,
                int64_t samples_per_chain, int64_t steps_per_iteration) {
  const auto* b = cm_or_skip(state);
  if (!b) return;
  Threads threads(1);
  Problem problem(*b->prior, *b->model.op, b->model.noise, b->y);
  auto s = make_sampler(sampler, options);
  timed_calls(state, run_call(*s, problem, state.range(0), samples_per_chain), steps_per_iteration);
}

void BM_NoiseLangevinRun(benchmark::State& state) {
  // Each chain's kept iterates are its samples: kRunSamplesPerChain steps per chain after no warm start.
  whole_runs(state, "noise_langevin",
             {{"chains", state.range(0)}, {"warm_start_steps", int64_t{0}}, {"step_size", 1e-5}}, kRunSamplesPerChain,
             kRunSamplesPerChain);
}

void BM_DpsRun(benchmark::State& state) {
  whole_runs(state, "dps", {{"steps", kDpsRunSteps}}, 1, kDpsRunSteps);
}

// Raw calls, kernel steps and whole runs of `steps` steps alternating in every iteration, one thread:
// counters raw_ms, kernel_ms and run_ms per batched call, kernel_ratio and run_ratio (to raw), over all
// iterations. The run makes `steps` network calls plus its first evaluation (noise-space Langevin: one
// forward+backward before the chain, and its last step is a forward pass only).
void paired(benchmark::State& state, const std::function<void()>& raw, const std::string& sampler,
            const std::map<std::string, OptionValue>& options, int64_t samples_per_chain, int64_t steps) {
  const auto* b = cm_or_skip(state);
  if (!b) return;
  Threads threads(1);
  const int64_t chains = state.range(0);
  Problem problem(*b->prior, *b->model.op, b->model.noise, b->y);
  auto s = make_sampler(sampler, options);
  auto kernel = s->single_steps(problem, chains, 5);
  if (!kernel) return state.SkipWithError("not a step kernel");
  auto run = run_call(*s, problem, chains, samples_per_chain);
  raw();
  kernel->step();
  run();
  using Clock = std::chrono::steady_clock;
  double raw_s = 0, kernel_s = 0, run_s = 0;
  auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  for (auto _ : state) {
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < steps; ++i) raw();
    const auto t1 = Clock::now();
    for (int64_t i = 0; i < steps; ++i) kernel->step();
    const auto t2 = Clock::now();
    run();
    const auto t3 = Clock::now();
    raw_s += seconds(t0, t1);
    kernel_s += seconds(t1, t2);
    run_s += seconds(t2, t3);
  }
  const double calls = static_cast<double>(state.iterations() * steps);
  state.counters["raw_ms"] = 1000 * raw_s / calls;
  state.counters["kernel_ms"] = 1000 * kernel_s / calls;
  state.counters["run_ms"] = 1000 * run_s / calls;
  state.counters["kernel_ratio"] = kernel_s / raw_s;
  state.counters["run_ratio"] = run_s / raw_s;
}

void BM_PairedNoiseLangevin(benchmark::State& state) {
  const auto* b = cm_or_skip(state);
  if (!b) return;
  paired(state, phi_call(*b, state.range(0)), "noise_langevin",
         {{"chains", state.range(0)}, {"warm_start_steps", int64_t{0}}, {"step_size", 1e-5}}, kRunSamplesPerChain,
         kRunSamplesPerChain);
}

void BM_PairedDps(benchmark::State& state) {
  const auto* b = cm_or_skip(state);
  if (!b) return;
  auto call = denoiser_call(*b, state.range(0));
  if (!call) return state.SkipWithError("the consistency prior has no denoiser");
  paired(state, call, "dps", {{"steps", kPairedDpsSteps}}, 1, kPairedDpsSteps);
}

const std::vector<int64_t> kOverheadBatches = {1, 2, 4, 8, 16, 32, 64};

const bool overhead_registered = [] {
  benchmark::AddCustomContext("blas", blas_settings());
  for (auto* bm : {benchmark::RegisterBenchmark("BM_PhiForwardBackward", BM_PhiForwardBackward),
                   benchmark::RegisterBenchmark("BM_NoiseLangevinKernelStep", BM_NoiseLangevinKernelStep),
                   benchmark::RegisterBenchmark("BM_DenoiserForwardBackward", BM_DenoiserForwardBackward),
                   benchmark::RegisterBenchmark("BM_DpsKernelStep", BM_DpsKernelStep)})
    bm->ArgsProduct({kOverheadBatches, {1, 2}})->ArgNames({"batch", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
  for (auto* bm : {benchmark::RegisterBenchmark("BM_NoiseLangevinRun", BM_NoiseLangevinRun),
                   benchmark::RegisterBenchmark("BM_DpsRun", BM_DpsRun)})
    bm->ArgsProduct({kOverheadBatches})->ArgNames({"batch"})->Unit(benchmark::kMillisecond)->UseRealTime();
  for (auto* bm : {benchmark::RegisterBenchmark("BM_PairedNoiseLangevin", BM_PairedNoiseLangevin),
                   benchmark::RegisterBenchmark("BM_PairedDps", BM_PairedDps)})
    bm->ArgsProduct({{1, 4, 16}})->ArgNames({"batch"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(4);
  return true;
}();

}  // namespace
