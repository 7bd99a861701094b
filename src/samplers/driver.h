#pragma once
// The one sampler driver (Stan's thin services over BlackJAX-style kernels, samplers/kernel.h): it
// owns the chains and their generators, batches of chains, the phases (warm-up timed and counted
// apart from sampling), burn-in and thinning, step-size adaptation, divergence and stuck chains, NFE
// counters and the trace columns the kernel names. Kernels only say how one step moves the state.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/option_schema.h"
#include "core/rng.h"
#include "samplers/chain_util.h"
#include "samplers/kernel.h"

namespace psbench {

// Options every kernel's driver takes: how many chains run together. Execution only (never changes
// results); each kernel schema includes it.
struct BatchOptions {
  int64_t batch_size = 0;
  static const OptionSchema<BatchOptions>& schema();
};

// Kernels fitting their schedule to an NFE budget declare
//   BudgetFit fit_budget(int64_t budget, int64_t num_samples, const Prior&) const;
// (a toy kernel without one refuses budget_mode: set).
template <class K, class = void>
struct HasBudgetRule : std::false_type {};
template <class K>
struct HasBudgetRule<K, std::void_t<decltype(std::declval<const K&>().fit_budget(int64_t{}, int64_t{},
                                                                                 std::declval<const Prior&>()))>>
    : std::true_type {};

// Kernels whose chains are not Markov chains declare `static constexpr bool kDrawsFormChains = false;`.
template <class K, class = void>
struct DrawsFormChains : std::true_type {};
template <class K>
struct DrawsFormChains<K, std::void_t<decltype(K::kDrawsFormChains)>> : std::bool_constant<K::kDrawsFormChains> {};

template <class K>
class KernelSampler : public Sampler {
 public:
  KernelSampler(std::string name, K kernel, BatchOptions batch)
      : name_(std::move(name)), kernel_(std::move(kernel)), batch_(batch) {}
  const K& kernel() const { return kernel_; }

  void check(const Prior& prior, const Operator& op) const override {
    check_needs(kernel_.needs(), name_, prior, &op);
    kernel_.validate(prior);
  }
  int64_t num_chains(int64_t num_samples) const override { return kernel_.chains(num_samples); }
  int64_t chains_per_batch(int64_t num_samples) const override {
    const int64_t n = num_chains(num_samples);
    return batch_.batch_size > 0 ? std::min(batch_.batch_size, n) : n;
  }
  int64_t planned_nfe(int64_t num_samples, const Prior& prior) const override {
    return kernel_.planned_nfe(num_samples, prior);
  }
  bool draws_form_chains() const override { return DrawsFormChains<K>::value; }
  BudgetFit fit_budget(int64_t budget, int64_t num_samples, const Prior& prior) const override {
    if constexpr (HasBudgetRule<K>::value) {
      check_needs(kernel_.needs(), name_, prior, nullptr);
      return kernel_.fit_budget(budget, num_samples, prior);
    } else {
      return Sampler::fit_budget(budget, num_samples, prior);
    }
  }

  SamplerOutput run(const Problem& problem, int64_t num_samples,
                    const std::vector<uint64_t>& chain_seeds) const override {
    using State = typename K::State;
    check(problem.prior(), problem.op());
    const int64_t n_chains = kernel_.chains(num_samples);
    const auto phases = kernel_.phases(num_samples / n_chains, problem.prior());
    const int64_t batch = chains_per_batch(num_samples);
    const auto dtype = problem.prior().dtype();

    std::vector<at::Generator> gens;
    for (auto s : chain_seeds) gens.push_back(make_generator(s));
    SamplerOutput out;
    out.diverged.assign(n_chains, 0);
    std::vector<std::vector<at::Tensor>> kept(n_chains);
    std::map<std::string, TraceAccumulator> columns;
    // The global step (all phases in order) at which each chain was dropped, -1 while alive: the trace
    // diverged_chains is built from it after all batches, so it does not depend on how chains were batched
    // (a batch whose chains all died stops early, and its later steps must still count them).
    std::vector<int64_t> dropped_at(n_chains, -1);
    int64_t total_steps = 0;
    for (const auto& ph : phases) total_steps += ph.steps;

    for (int64_t first = 0; first < n_chains; first += batch) {
      std::vector<int64_t> live;
      for (int64_t c = first; c < std::min(n_chains, first + batch); ++c) live.push_back(c);
      const ChainRng rng(gens, live, dtype);
      std::vector<int64_t> accepted(n_chains, 0);
      int64_t global_step = 0;
      State state;
      for (size_t p = 0; p < phases.size() && !live.empty(); ++p) {
        const Phase& phase = phases[p];
        Stopwatch clock;
        StepContext ctx{problem, rng, phase.warmup ? out.warmup_nfe : out.sampling_nfe, static_cast<int64_t>(p), 0, false, {}};
        if (p == 0) state = kernel_.init(ctx);
        state = kernel_.enter(std::move(state), ctx);
        // The adapted parameter, one per chain (dual averaging, Hoffman & Gelman 2014).
        at::Tensor h;
        std::unique_ptr<DualAveraging> adapt;
        if (phase.adapt.initial > 0) {
          h = at::full({static_cast<int64_t>(live.size())}, phase.adapt.initial, at::TensorOptions().dtype(dtype));
          if (phase.adapt.steps > 0) adapt = std::make_unique<DualAveraging>(h, phase.adapt.target);
        }
        auto drop = [&](const at::Tensor& ok, const std::string& why, int64_t at_step) {
          std::vector<int64_t> keep, still;
          auto okc = ok.to(at::kBool).cpu().contiguous();
          auto acc = okc.accessor<bool, 1>();
          for (int64_t i = 0; i < okc.size(0); ++i) {
            if (acc[i]) {
              keep.push_back(i);
              still.push_back(live[i]);
            } else {
              out.diverged[live[i]] = 1;
              dropped_at[live[i]] = at_step;
              if (out.divergence_message.empty())
                out.divergence_message = "chain " + std::to_string(live[i]) + " " + why;
            }
          }
          if (still.size() == live.size()) return;
          live = std::move(still);  // rng reads `live`, so it follows
          if (live.empty()) return;
          auto rows = at::tensor(keep, at::TensorOptions().dtype(at::kLong));
          state.keep_rows(rows);
          if (h.defined()) h = keep_defined_rows(h, rows);
          if (adapt) adapt->keep_rows(keep);
        };

        for (int64_t t = 0; t < phase.steps && !live.empty(); ++t, ++global_step) {
          ctx.t = t;
          ctx.last = p + 1 == phases.size() && t + 1 == phase.steps;
          ctx.step_size = h;
          auto step = kernel_.step(std::move(state), ctx);
          state = std::move(step.state);
          const Info& info = step.info;
          const int64_t b = static_cast<int64_t>(live.size());
          for (const auto& [name, col] : info.columns)
            columns[name].add(static_cast<size_t>(t), col.sum().template item<double>(), b);
          if (info.accepted.defined()) {
            auto a = info.accepted.to(at::kBool).cpu().contiguous();
            auto acc = a.accessor<bool, 1>();
            for (int64_t i = 0; i < b; ++i) accepted[live[i]] += acc[i] ? 1 : 0;
          }
          if (adapt && t < phase.adapt.steps) {
            h = adapt->update(info.accept_prob.to(h.scalar_type()));
            if (t + 1 == phase.adapt.steps) h = adapt->final_step();  // the averaged iterate from here on
            if (std::isfinite(phase.adapt.max)) h = h.clamp_max(phase.adapt.max);
          }
          drop(kernel_.ok(state, ctx), "diverged (" + kernel_.divergence(ctx) + ") at " + phase.name + " step " +
                                           std::to_string(t),
               global_step);
          if (phase.keep == Keep::Thinned && t + 1 > phase.burn_in && (t + 1 - phase.burn_in) % phase.thinning == 0)
            store(kernel_.sample(state), live, kept, problem.prior().data_shape().size());
        }
        if (!live.empty() && phase.check_stuck && phase.steps >= kStuckAfterProposals) {
          std::vector<uint8_t> moved;
          for (auto c : live) moved.push_back(accepted[c] > 0);
          drop(at::tensor(std::vector<int64_t>(moved.begin(), moved.end())),
               "accepted none of its " + std::to_string(phase.steps) + " proposals in the " + phase.name +
                   " phase (" + kernel_.divergence(ctx) + ")",
               global_step - 1);  // counted at the phase's last step
        }
        if (!live.empty() && phase.keep == Keep::Last)
          store(kernel_.sample(state), live, kept, problem.prior().data_shape().size());
        (phase.warmup ? out.warmup_seconds : out.sampling_seconds) += clock.seconds();
      }
    }

    std::vector<at::Tensor> per_chain(n_chains);
    for (int64_t c = 0; c < n_chains; ++c)
      if (!out.diverged[c] && !kept[c].empty()) per_chain[c] = at::stack(kept[c]);
    out.samples = assemble_samples(per_chain, out.diverged, problem.prior().data_shape(), dtype);
    for (const auto& [name, acc] : columns) out.trace[name] = acc.mean();
    std::vector<double> diverged_by_step(static_cast<size_t>(total_steps), 0.0);  // chains dropped by each step
    for (int64_t at : dropped_at)
      if (at >= 0)
        for (int64_t g = at; g < total_steps; ++g) diverged_by_step[static_cast<size_t>(g)] += 1.0;
    out.trace["diverged_chains"] = diverged_by_step;
    return out;
  }

  std::unique_ptr<SingleSteps> single_steps(const Problem& problem, int64_t chains, uint64_t seed) const override {
    check(problem.prior(), problem.op());
    return std::make_unique<Stepper>(kernel_, problem, chains, seed);
  }

 private:
  class Stepper : public SingleSteps {
   public:
    Stepper(const K& kernel, const Problem& problem, int64_t chains, uint64_t seed)
        : kernel_(kernel), rng_(gens_, live_, problem.prior().dtype()),
          phases_(kernel.phases(1, problem.prior())),
          ctx_{problem, rng_, count_, 0, 0, false, {}} {
      for (int64_t c = 0; c < chains; ++c) {
        gens_.push_back(make_generator(derive_seed({seed, static_cast<uint64_t>(c)})));
        live_.push_back(c);
      }
      state_ = kernel_.init(ctx_);
      for (size_t p = 0; p < phases_.size(); ++p) {
        ctx_.phase = static_cast<int64_t>(p);
        state_ = kernel_.enter(std::move(state_), ctx_);
      }
      const auto& adapt = phases_.back().adapt;
      if (adapt.initial > 0) ctx_.step_size = at::full({chains}, adapt.initial, at::TensorOptions().dtype(problem.prior().dtype()));
    }
    void step() override {
      ctx_.t = t_++ % std::max<int64_t>(1, phases_.back().steps);
      state_ = kernel_.step(std::move(state_), ctx_).state;
    }
    const NfeCount& nfe() const override { return count_; }

   private:
    const K& kernel_;
    std::vector<at::Generator> gens_;
    std::vector<int64_t> live_;
    ChainRng rng_;
    NfeCount count_;
    std::vector<Phase> phases_;
    StepContext ctx_;
    typename K::State state_;
    int64_t t_ = 0;
  };

  // x: [B, *data], one sample per chain, or [B, J, *data] from a kernel whose chain yields J at once (an SMC
  // run's draws from its final particles).
  static void store(const at::Tensor& x, const std::vector<int64_t>& live, std::vector<std::vector<at::Tensor>>& kept,
                    size_t data_dims) {
    auto xd = x.detach();
    const bool several = static_cast<size_t>(xd.dim()) == data_dims + 2;
    for (size_t i = 0; i < live.size(); ++i) {
      auto row = xd[static_cast<int64_t>(i)];
      if (!several) kept[live[i]].push_back(row);
      else
        for (int64_t j = 0; j < row.size(0); ++j) kept[live[i]].push_back(row[j]);
    }
  }

  std::string name_;
  K kernel_;
  BatchOptions batch_;
};

// Registers kernel K under `name`: its options are `schema` plus the batch options, and the sampler is
// built through the validated path (schema parse with its cross-field checks, then `make`).
template <class K>
SamplerRegistry::Entry kernel_entry(const std::string& name, const std::string& description,
                                    const OptionSchema<typename K::Options>& schema,
                                    std::function<K(const typename K::Options&)> make) {
  auto specs = schema.specs();
  for (const auto& s : BatchOptions::schema().specs()) specs.push_back(s);
  const auto* sch = &schema;
  return {name, description, specs, [name, sch, make](const Options& o) -> std::unique_ptr<Sampler> {
            return std::make_unique<KernelSampler<K>>(name, make(sch->parse(o)), BatchOptions::schema().parse(o));
          }};
}

// The common case: K(Options) with Options::schema().
template <class K>
SamplerRegistry::Entry kernel_entry(const std::string& name, const std::string& description) {
  return kernel_entry<K>(name, description, K::Options::schema(),
                         [](const typename K::Options& o) { return K(o); });
}

}  // namespace psbench
