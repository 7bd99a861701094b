#pragma once
// Pieces shared by the noise-space kernels (ALGORITHMS.md §1): the chain options group, the state on
// the noise z of Phi, the Adam warm start on ||y - A(Phi(z))||^2, the evaluation of
// U(z) = prior_scale ||z||^2 / 2 + R(Phi(z)) and its gradient, and the Metropolis-Hastings
// accept/reject step that MALA and pCN share (BlackJAX: a proposal plus a reusable acceptance step).
#include <ATen/ATen.h>

#include <string>
#include <type_traits>
#include <variant>
#include <utility>
#include <vector>

#include "core/option_schema.h"
#include "samplers/kernel.h"

namespace psbench {

// The budget rule in one line (psbench list): NoiseChainOptions::fit_budget.
inline constexpr const char* kNoiseBudgetRule =
    "per chain floor(B / (chains e)) evaluations (e = Phi's per call); the chain keeps 1 + per_chain thinning, the "
    "rest is split between warm_start_steps and burn_in in their given proportion (adapt_steps cut to burn_in)";

// Options every noise-space chain takes.
struct NoiseChainOptions {
  int64_t chains = 1;              // independent chains; samples_per_measurement must divide evenly
  int64_t warm_start_steps = 400;  // K Adam steps on ||y - A(Phi(z))||^2 (no prior term)
  double warm_start_lr = 5e-3;
  int64_t burn_in = 0;             // chain steps discarded after the warm start
  int64_t thinning = 1;            // keep every thinning-th iterate
  // A chain whose mean squared noise coordinate ||z||^2/dim exceeds this (z ~ N(0, I) has ~1) has left
  // any plausible region of the target and is stopped as diverged, as is a non-finite one.
  double divergence_threshold = 1e4;
  static const OptionSchema<NoiseChainOptions>& schema();

  int64_t chains_for(const std::string& sampler, int64_t num_samples) const;
  // Warm start (fwd+bwd), one evaluation at the start of the chain, one per chain step.
  int64_t planned_nfe(int64_t num_samples, const Prior& prior) const;
  // Budget rule (per measurement, all chains): b = floor(B / (chains e)) evaluations per chain (e = Phi's
  // evaluations per call); the chain's fixed part 1 + per_chain thinning (its first evaluation and the kept
  // iterates), the rest F = b - fixed split between warm_start_steps and burn_in in their given proportion
  // (all to the warm start when both are 0). Sets warm_start_steps and burn_in.
  BudgetFit fit_budget(const std::string& sampler, int64_t budget, int64_t num_samples, const Prior& prior) const;
  // The warm-up phase and the chain phase (burn-in, thinning; `adapt` and the stuck check for MCMC).
  std::vector<Phase> phases(int64_t per_chain, Adaptation adapt, bool mcmc) const;
};

// Step-size adaptation options of the Metropolis-adjusted kernels.
struct AdaptOptions {
  int64_t steps = 0;  // dual averaging during the first `steps` burn-in steps (<= burn_in)
  double target_acceptance = 0.5;
};
OptionSchema<AdaptOptions> adapt_schema(double default_target, const std::string& parameter);
// The cross-field check of the adapting kernels: the parameter may only adapt during burn-in.
std::string adapt_within_burn_in(const AdaptOptions& adapt, const NoiseChainOptions& chain, const std::string& parameter);

struct NoiseState {
  at::Tensor z;                // [B, *latent]
  at::Tensor m1, m2, loss;     // warm-up: Adam moments, R at the previous iterate
  at::Tensor x, r, u, grad;    // Phi(z), R(Phi(z)), U(z), grad U(z) (u, grad undefined without gradients)
  void keep_rows(const at::Tensor& rows);
};

NoiseState noise_init(const StepContext& ctx);
// Entering the warm-up (phase 0) zeroes the Adam moments.
NoiseState noise_enter_warmup(NoiseState s);
// One Adam step on ||y - A(Phi(z))||^2 (betas 0.9/0.999, eps 1e-8); trace column warmup_loss.
Step<NoiseState> adam_warm_start_step(NoiseState s, const StepContext& ctx, double lr);
// Phi(z), R and, with_grad, U(z) and grad U(z).
NoiseState evaluate_noise(const at::Tensor& z, const StepContext& ctx, double prior_scale, bool with_grad);
// Finite and ||z||^2/dim <= threshold (and, in the warm-up, a finite loss; in the chain a finite image).
at::Tensor noise_ok(const NoiseState& s, double threshold);

// Metropolis-Hastings: accepts rows with log u < log alpha; a non-finite log alpha (or a row that
// `valid` marks false) is a rejection. Returns the merged state and the info columns acceptance and
// chain_loss, plus accept_prob and accepted for the driver.
Step<NoiseState> mh_accept(NoiseState current, NoiseState proposal, at::Tensor log_alpha, const at::Tensor& valid,
                           const at::Tensor& log_u);

// [B] -> [B, 1, ..., 1] to broadcast a per-chain value against `like`.
at::Tensor per_row(const at::Tensor& v, const at::Tensor& like);

// The kernel members ULA, MALA and pCN share (the contract of samplers/kernel.h): they need a generator,
// split the samples over chains, plan NFE alike, start from z ~ N(0, I), warm up by Adam (phase 0),
// return Phi(z) as the sample and test divergence on ||z||^2/dim. A kernel derives from
// NoiseKernel<Itself, ItsOptions> (Options has a NoiseChainOptions `chain`) and adds its chain phase:
//   Adaptation adaptation() const;  static constexpr bool kMcmc;  std::string settings() const;
//   NoiseState enter_chain(NoiseState, const StepContext&) const;
//   Step<NoiseState> chain_step(NoiseState, const StepContext&) const;
template <class O, class = void>
struct HasAdaptOptions : std::false_type {};
template <class O>
struct HasAdaptOptions<O, std::void_t<decltype(std::declval<O>().adapt.steps)>> : std::true_type {};

template <class Derived, class Opts>
class NoiseKernel {
 public:
  using Options = Opts;
  using State = NoiseState;
  NoiseKernel(std::string name, Opts o) : name_(std::move(name)), o_(std::move(o)) {}

  Needs needs() const {
    Needs n;
    n.generator = true;
    return n;
  }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return o_.chain.chains_for(name_, n); }
  // Warm start and chain: fwd+bwd, except pCN's chain (forward passes) — the same counts.
  int64_t planned_nfe(int64_t n, const Prior& prior) const { return o_.chain.planned_nfe(n, prior); }
  // NoiseChainOptions::fit_budget; an adaptation (MALA, pCN) longer than the fitted burn-in is cut to it.
  BudgetFit fit_budget(int64_t budget, int64_t n, const Prior& prior) const {
    auto fit = o_.chain.fit_budget(name_, budget, n, prior);
    if constexpr (HasAdaptOptions<Opts>::value) {
      const int64_t burn_in = std::get<int64_t>(fit.set.at("burn_in"));
      if (o_.adapt.steps > burn_in) {
        fit.set["adapt_steps"] = burn_in;
        fit.rule += "; adapt_steps cut to burn_in = " + std::to_string(burn_in);
      }
    }
    return fit;
  }
  std::vector<Phase> phases(int64_t per_chain, const Prior&) const {
    return o_.chain.phases(per_chain, self().adaptation(), Derived::kMcmc);
  }
  State init(const StepContext& ctx) const { return noise_init(ctx); }
  State enter(State s, const StepContext& ctx) const {
    return ctx.phase == 0 ? noise_enter_warmup(std::move(s)) : self().enter_chain(std::move(s), ctx);
  }
  Step<State> step(State s, const StepContext& ctx) const {
    return ctx.phase == 0 ? adam_warm_start_step(std::move(s), ctx, o_.chain.warm_start_lr)
                          : self().chain_step(std::move(s), ctx);
  }
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext&) const { return noise_ok(s, o_.chain.divergence_threshold); }
  std::string divergence(const StepContext&) const {
    return "non-finite or ||z||^2/dim > " + format_value(o_.chain.divergence_threshold) + "; " + self().settings() +
           ", warm_start_lr=" + format_value(o_.chain.warm_start_lr);
  }

 protected:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
  std::string name_;
  Opts o_;
};

}  // namespace psbench
