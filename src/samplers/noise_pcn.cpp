#include "samplers/noise_pcn.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "core/rng.h"
#include "samplers/chain_util.h"
#include "samplers/noise_mala.h"

namespace psbench {

NoisePcnOptions NoisePcnOptions::from(const Options& o) {
  NoisePcnOptions r;
  r.chains = o.get_int("chains");
  r.batch_size = o.get_int("batch_size");
  r.warm_start_steps = o.get_int("warm_start_steps");
  r.warm_start_lr = o.get_real("warm_start_lr");
  r.beta = o.get_real("beta");
  r.burn_in = o.get_int("burn_in");
  r.thinning = o.get_int("thinning");
  r.adapt_steps = o.get_int("adapt_steps");
  r.target_acceptance = o.get_real("target_acceptance");
  r.divergence_threshold = o.get_real("divergence_threshold");
  return r;
}

int64_t NoisePcn::num_chains(int64_t num_samples) const {
  if (num_samples % o_.chains != 0)
    throw ConfigError("sampler noise_pcn: samples_per_measurement=" + std::to_string(num_samples) +
                      " is not a multiple of chains=" + std::to_string(o_.chains));
  if (o_.adapt_steps > o_.burn_in)
    throw ConfigError("sampler noise_pcn: adapt_steps=" + std::to_string(o_.adapt_steps) + " exceeds burn_in=" +
                      std::to_string(o_.burn_in) + " (beta may only adapt during burn-in)");
  return o_.chains;
}

int64_t NoisePcn::planned_nfe(int64_t num_samples, const Prior& prior) const {
  const int64_t per_chain = num_samples / o_.chains;
  const int64_t evals = prior.generator() ? prior.generator()->evaluations_per_call() : 1;
  // Warm start (fwd+bwd), then forward passes only: the start of the chain and one per proposal.
  return o_.chains * (o_.warm_start_steps + 1 + o_.burn_in + per_chain * o_.thinning) * evals;
}

SamplerOutput NoisePcn::run(const Problem& problem, int64_t num_samples,
                            const std::vector<uint64_t>& chain_seeds) const {
  const auto& phi = problem.generator("noise_pcn");
  const Shape latent = phi.latent_shape();
  const auto dtype = problem.prior().dtype();
  const int64_t n_chains = num_chains(num_samples);
  const int64_t per_chain = num_samples / n_chains;
  const int64_t chain_steps = o_.burn_in + per_chain * o_.thinning;
  const int64_t batch = o_.batch_size > 0 ? o_.batch_size : n_chains;

  std::vector<at::Generator> gens;
  for (auto s : chain_seeds) gens.push_back(make_generator(s));
  SamplerOutput out;
  out.diverged.assign(n_chains, 0);
  std::vector<at::Tensor> kept(n_chains);
  TraceAccumulator warm_loss, chain_loss, acceptance, beta_trace;
  auto message = [&](const std::string& what) {
    return what + " (beta=" + format_value(o_.beta) + ", adapt_steps=" + std::to_string(o_.adapt_steps) +
           ", warm_start_lr=" + format_value(o_.warm_start_lr) + ")";
  };

  for (int64_t first = 0; first < n_chains; first += batch) {
    LiveChains chains;
    for (int64_t c = first; c < std::min(n_chains, first + batch); ++c) chains.live.push_back(c);

    Stopwatch warm_clock;
    at::Tensor z = randn_per_chain(gens, chains.live, latent, dtype);
    z = adam_warm_start(problem, z, o_.warm_start_steps, o_.warm_start_lr, o_.divergence_threshold, chains, out,
                        warm_loss, [&](int64_t c, int64_t k) {
                          return message("chain " + std::to_string(c) + " diverged (non-finite or ||z||^2/dim > " +
                                         format_value(o_.divergence_threshold) + ") at warm-up step " +
                                         std::to_string(k));
                        });
    out.warmup_seconds += warm_clock.seconds();
    if (chains.empty()) continue;

    Stopwatch chain_clock;
    at::NoGradGuard no_grad;
    std::vector<std::vector<at::Tensor>> store(n_chains);
    std::vector<int64_t> accepted(n_chains, 0);
    at::Tensor x = problem.generate(z, false, out.sampling_nfe);
    at::Tensor r = problem.potential(x);
    at::Tensor beta = at::full({chains.size()}, o_.beta, z.options());
    std::unique_ptr<DualAveraging> adapt;
    if (o_.adapt_steps > 0) adapt = std::make_unique<DualAveraging>(beta, o_.target_acceptance);
    std::vector<int64_t> keep;
    Shape bshape(static_cast<size_t>(z.dim()), 1);
    for (int64_t t = 1; t <= chain_steps && !chains.empty(); ++t) {
      auto xi = randn_per_chain(gens, chains.live, latent, dtype);
      std::vector<at::Tensor> us;
      for (auto c : chains.live) us.push_back(at::rand({1}, gens[c], at::TensorOptions().dtype(at::kDouble)));
      auto log_u = at::cat(us).log();
      bshape[0] = chains.size();
      auto b = beta.reshape(bshape);
      auto zp = (1.0 - b * b).clamp_min(0.0).sqrt() * z + b * xi;
      auto xp = problem.generate(zp, false, out.sampling_nfe);
      auto rp = problem.potential(xp);
      auto log_alpha = (r - rp).to(at::kDouble);
      log_alpha = at::where(at::isfinite(log_alpha), log_alpha, at::full_like(log_alpha, -INFINITY));
      auto accept = log_u < log_alpha;
      auto prob = log_alpha.clamp_max(0.0).exp();
      {
        auto acc = accept.accessor<bool, 1>();
        for (int64_t i = 0; i < chains.size(); ++i) accepted[chains.live[i]] += acc[i] ? 1 : 0;
      }
      Shape xshape(static_cast<size_t>(x.dim()), 1);
      xshape[0] = chains.size();
      z = at::where(accept.reshape(bshape), zp, z);
      x = at::where(accept.reshape(xshape), xp, x);
      r = at::where(accept, rp, r);
      acceptance.add(static_cast<size_t>(t - 1), prob.sum().item<double>(), chains.size());
      beta_trace.add(static_cast<size_t>(t - 1), beta.sum().item<double>(), chains.size());
      chain_loss.add(static_cast<size_t>(t - 1), r.sum().item<double>(), chains.size());
      if (adapt && t <= o_.adapt_steps) {
        beta = adapt->update(prob.to(beta.scalar_type())).clamp_max(1.0);
        if (t == o_.adapt_steps) beta = adapt->final_step().clamp_max(1.0);
      }
      auto ok = finite_and_bounded(z, at::scalar_tensor(o_.divergence_threshold, z.options()));
      if (chains.check(ok, out, [&](int64_t c) {
            return message("chain " + std::to_string(c) + " diverged (||z||^2/dim > " +
                           format_value(o_.divergence_threshold) + ") at chain step " + std::to_string(t));
          }, keep)) {
        if (chains.empty()) break;
        z = select_rows(z, keep);
        x = select_rows(x, keep);
        r = select_rows(r, keep);
        beta = select_rows(beta, keep);
        if (adapt) adapt->keep_rows(keep);
      }
      if (t > o_.burn_in && (t - o_.burn_in) % o_.thinning == 0)
        for (int64_t i = 0; i < chains.size(); ++i) store[chains.live[i]].push_back(x[i]);
    }
    if (chain_steps >= kStuckAfterProposals)
      for (auto c : chains.live)
        if (accepted[c] == 0 && !out.diverged[c]) {
          out.diverged[c] = 1;
          if (out.divergence_message.empty())
            out.divergence_message = message("chain " + std::to_string(c) + " accepted none of its " +
                                             std::to_string(chain_steps) + " proposals");
        }
    for (auto c : chains.live)
      if (!out.diverged[c]) kept[c] = at::stack(store[c]);
    out.sampling_seconds += chain_clock.seconds();
  }

  out.samples = assemble_samples(kept, out.diverged, problem.prior().data_shape(), dtype);
  out.trace["warmup_loss"] = warm_loss.mean();
  out.trace["chain_loss"] = chain_loss.mean();
  out.trace["acceptance"] = acceptance.mean();
  out.trace["beta"] = beta_trace.mean();
  return out;
}

namespace {
SamplerRegistrar reg_noise_pcn(
    {"noise_pcn",
     "preconditioned Crank-Nicolson in noise space: z' = sqrt(1-beta^2) z + beta xi, accepted with the likelihood "
     "ratio (forward passes only)",
     {OptionSpec::integer("chains", 1, "independent chains; samples_per_measurement / chains kept per chain")
          .at_least(1),
      OptionSpec::integer("batch_size", 0, "chains evaluated together (0 = all); results do not depend on it")
          .at_least(0)
          .execution(),
      OptionSpec::integer("warm_start_steps", 400, "Adam steps on ||y - A(Phi(z))||^2 before the chain").at_least(0),
      OptionSpec::real("warm_start_lr", 5e-3, "Adam learning rate of the warm start").above(0),
      OptionSpec::real("beta", 0.1, "pCN step: z' = sqrt(1 - beta^2) z + beta xi (the initial value when adapting)")
          .above(0)
          .at_most(1),
      OptionSpec::integer("burn_in", 0, "chain steps discarded before keeping samples").at_least(0),
      OptionSpec::integer("thinning", 1, "keep every thinning-th iterate").at_least(1),
      OptionSpec::integer("adapt_steps", 0,
                          "dual-averaging adaptation of beta per chain during the first adapt_steps burn-in steps "
                          "(0 = fixed; must not exceed burn_in)")
          .at_least(0),
      OptionSpec::real("target_acceptance", 0.25, "acceptance rate the adaptation aims at").above(0).at_most(0.99),
      OptionSpec::real("divergence_threshold", 1e4,
                       "a chain with ||z||^2/dim above this is stopped and marked diverged")
          .above(0)},
     [](const Options& o) { return std::make_unique<NoisePcn>(NoisePcnOptions::from(o)); }});
}  // namespace

}  // namespace psbench
