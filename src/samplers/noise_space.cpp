#include "samplers/noise_space.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "samplers/chain_util.h"

namespace psbench {

const OptionSchema<NoiseChainOptions>& NoiseChainOptions::schema() {
  static const auto s = [] {
    using O = NoiseChainOptions;
    OptionSchema<O> s;
    s.integer(&O::chains, "chains", 1, "independent chains; samples_per_measurement / chains kept per chain").at_least(1);
    s.integer(&O::warm_start_steps, "warm_start_steps", 400, "K: Adam steps on ||y - A(Phi(z))||^2 before the chain")
        .at_least(0);
    s.real(&O::warm_start_lr, "warm_start_lr", 5e-3, "Adam learning rate of the warm start").above(0);
    s.integer(&O::burn_in, "burn_in", 0, "chain steps discarded before keeping samples").at_least(0);
    s.integer(&O::thinning, "thinning", 1, "keep every thinning-th iterate").at_least(1);
    s.real(&O::divergence_threshold, "divergence_threshold", 1e4,
           "a chain with ||z||^2/dim above this (or non-finite) is stopped and marked diverged")
        .above(0);
    return s;
  }();
  return s;
}

int64_t NoiseChainOptions::chains_for(const std::string& sampler, int64_t num_samples) const {
  if (num_samples % chains != 0)
    throw ConfigError("sampler " + sampler + ": samples_per_measurement=" + std::to_string(num_samples) +
                      " is not a multiple of chains=" + std::to_string(chains));
  return chains;
}

int64_t NoiseChainOptions::planned_nfe(int64_t num_samples, const Prior& prior) const {
  const int64_t per_chain = num_samples / chains;
  const int64_t evals = prior.generator() ? prior.generator()->evaluations_per_call() : 1;
  return chains * (warm_start_steps + 1 + burn_in + per_chain * thinning) * evals;
}

BudgetFit NoiseChainOptions::fit_budget(const std::string& sampler, int64_t budget, int64_t num_samples,
                                        const Prior& prior) const {
  const int64_t per_chain = chains_for(sampler, num_samples) > 0 ? num_samples / chains : 0;
  const int64_t evals = prior.generator() ? prior.generator()->evaluations_per_call() : 1;
  const int64_t b = budget / (chains * evals), fixed = 1 + per_chain * thinning;
  if (b < fixed)
    throw ConfigError(budget_error(sampler, budget, num_samples,
                                   "the chain alone (1 + " + std::to_string(per_chain) + " x thinning " +
                                       std::to_string(thinning) + " steps per chain, " + std::to_string(chains) +
                                       " chains, " + std::to_string(evals) + " evaluations per Phi) costs " +
                                       std::to_string(chains * fixed * evals)));
  const int64_t flexible = b - fixed;
  const int64_t warm = warm_start_steps + burn_in == 0
                           ? flexible
                           : static_cast<int64_t>(std::llround(static_cast<double>(flexible) * warm_start_steps /
                                                               static_cast<double>(warm_start_steps + burn_in)));
  const int64_t burn = flexible - warm;
  return {{{"warm_start_steps", warm}, {"burn_in", burn}},
          "per chain b = floor(B / (chains e)) = floor(" + std::to_string(budget) + " / (" + std::to_string(chains) +
              " x " + std::to_string(evals) + ")) = " + std::to_string(b) + "; chain 1 + " + std::to_string(per_chain) +
              " x " + std::to_string(thinning) + ", the other " + std::to_string(flexible) +
              " split warm_start_steps : burn_in as given (" + std::to_string(warm_start_steps) + " : " +
              std::to_string(burn_in) + ") -> warm_start_steps = " + std::to_string(warm) +
              ", burn_in = " + std::to_string(burn)};
}

std::vector<Phase> NoiseChainOptions::phases(int64_t per_chain, Adaptation adapt, bool mcmc) const {
  Phase chain = Phase::of("chain", burn_in + per_chain * thinning, false, Keep::Thinned);
  chain.burn_in = burn_in;
  chain.thinning = thinning;
  chain.adapt = adapt;
  chain.check_stuck = mcmc;
  return {Phase::of("warm-up", warm_start_steps, true), chain};
}

OptionSchema<AdaptOptions> adapt_schema(double default_target, const std::string& parameter) {
  OptionSchema<AdaptOptions> s;
  s.integer(&AdaptOptions::steps, "adapt_steps", 0,
            "dual-averaging adaptation of " + parameter +
                " per chain during the first adapt_steps burn-in steps (0 = fixed; must not exceed burn_in)")
      .at_least(0);
  s.real(&AdaptOptions::target_acceptance, "target_acceptance", default_target, "acceptance rate the adaptation aims at")
      .above(0)
      .at_most(0.99);
  return s;
}

std::string adapt_within_burn_in(const AdaptOptions& adapt, const NoiseChainOptions& chain, const std::string& parameter) {
  if (adapt.steps <= chain.burn_in) return "";
  return "adapt_steps=" + std::to_string(adapt.steps) + " exceeds burn_in=" + std::to_string(chain.burn_in) + " (" +
         parameter + " may only adapt during burn-in)";
}

void NoiseState::keep_rows(const at::Tensor& rows) {
  for (auto* t : {&z, &m1, &m2, &loss, &x, &r, &u, &grad}) *t = keep_defined_rows(*t, rows);
}

NoiseState noise_init(const StepContext& ctx) {
  const auto& phi = ctx.problem.generator("");
  NoiseState s;
  s.z = ctx.rng.normal(phi.latent_shape());
  return s;
}

NoiseState noise_enter_warmup(NoiseState s) {
  s.m1 = at::zeros_like(s.z);
  s.m2 = at::zeros_like(s.z);
  return s;
}

Step<NoiseState> adam_warm_start_step(NoiseState s, const StepContext& ctx, double lr) {
  at::AutoGradMode grad_mode(true);
  const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const auto& noise = ctx.problem.noise();
  auto leaf = s.z.detach().requires_grad_(true);
  auto r = ctx.problem.potential(ctx.problem.generate(leaf, true, ctx.nfe));
  // R = ||.||^2 / (2 sigma_y^2): same minimiser, reported scale; the gradient is that of ||y - A(Phi(z))||^2.
  auto grad = torch::autograd::grad({r.sum()}, {leaf})[0] * (2.0 * noise.sigma_y * noise.sigma_y);
  Step<NoiseState> out;
  s.loss = r.detach();
  out.info.add("warmup_loss", s.loss);
  const int64_t k = ctx.t;
  s.m1 = beta1 * s.m1 + (1 - beta1) * grad;
  s.m2 = beta2 * s.m2 + (1 - beta2) * grad * grad;
  const double bc1 = 1 - std::pow(beta1, k + 1), bc2 = 1 - std::pow(beta2, k + 1);
  s.z = s.z.detach() - lr * (s.m1 / bc1) / ((s.m2 / bc2).sqrt() + eps);
  out.state = std::move(s);
  return out;
}

NoiseState evaluate_noise(const at::Tensor& z, const StepContext& ctx, double prior_scale, bool with_grad) {
  NoiseState s;
  if (!with_grad) {
    at::NoGradGuard no_grad;
    s.z = z.detach();
    s.x = ctx.problem.generate(s.z, false, ctx.nfe);
    s.r = ctx.problem.potential(s.x);
    return s;
  }
  at::AutoGradMode grad_mode(true);
  auto leaf = z.detach().requires_grad_(true);
  auto x = ctx.problem.generate(leaf, true, ctx.nfe);
  auto r = ctx.problem.potential(x);
  auto u = prior_scale * 0.5 * leaf.flatten(1).pow(2).sum(1) + r;
  s.grad = torch::autograd::grad({u.sum()}, {leaf})[0].detach();
  s.z = leaf.detach();
  s.x = x.detach();
  s.r = r.detach();
  s.u = u.detach();
  return s;
}

at::Tensor noise_ok(const NoiseState& s, double threshold) {
  auto ok = finite_and_bounded(s.z, at::scalar_tensor(threshold, s.z.options()));
  if (s.x.defined()) return ok.logical_and(at::isfinite(s.x.flatten(1).pow(2).sum(1)));
  if (s.loss.defined()) return ok.logical_and(at::isfinite(s.loss));
  return ok;
}

at::Tensor per_row(const at::Tensor& v, const at::Tensor& like) {
  Shape shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = like.size(0);
  return v.reshape(shape);
}

Step<NoiseState> mh_accept(NoiseState cur, NoiseState prop, at::Tensor log_alpha, const at::Tensor& valid,
                           const at::Tensor& log_u) {
  auto finite = at::isfinite(log_alpha);
  if (valid.defined()) finite = finite.logical_and(valid);
  log_alpha = at::where(finite, log_alpha, at::full_like(log_alpha, -INFINITY));
  auto accept = log_u < log_alpha;
  auto prob = log_alpha.clamp_max(0.0).exp();
  auto merge = [&](at::Tensor& c, const at::Tensor& p) {
    if (c.defined()) c = at::where(c.dim() > 1 ? per_row(accept, c) : accept, p, c);
  };
  merge(cur.z, prop.z);
  merge(cur.grad, prop.grad);
  merge(cur.x, prop.x);
  merge(cur.u, prop.u);
  merge(cur.r, prop.r);
  Step<NoiseState> out;
  out.info.add("acceptance", prob);
  out.info.add("chain_loss", cur.r);
  out.info.accept_prob = prob;
  out.info.accepted = accept;
  out.state = std::move(cur);
  return out;
}

}  // namespace psbench
