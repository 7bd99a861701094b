#include "samplers/noise_mala.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "core/rng.h"
#include "samplers/chain_util.h"

namespace psbench {

NoiseMalaOptions NoiseMalaOptions::from(const Options& o) {
  NoiseMalaOptions r;
  r.chains = o.get_int("chains");
  r.batch_size = o.get_int("batch_size");
  r.warm_start_steps = o.get_int("warm_start_steps");
  r.warm_start_lr = o.get_real("warm_start_lr");
  r.step_size = o.get_real("step_size");
  r.burn_in = o.get_int("burn_in");
  r.thinning = o.get_int("thinning");
  r.prior_scale = o.get_real("prior_scale");
  r.adapt_steps = o.get_int("adapt_steps");
  r.target_acceptance = o.get_real("target_acceptance");
  r.divergence_threshold = o.get_real("divergence_threshold");
  return r;
}

int64_t NoiseMala::num_chains(int64_t num_samples) const {
  if (num_samples % o_.chains != 0)
    throw ConfigError("sampler noise_mala: samples_per_measurement=" + std::to_string(num_samples) +
                      " is not a multiple of chains=" + std::to_string(o_.chains));
  if (o_.adapt_steps > o_.burn_in)
    throw ConfigError("sampler noise_mala: adapt_steps=" + std::to_string(o_.adapt_steps) +
                      " exceeds burn_in=" + std::to_string(o_.burn_in) +
                      " (the step size may only adapt during burn-in)");
  return o_.chains;
}

int64_t NoiseMala::planned_nfe(int64_t num_samples, const Prior& prior) const {
  const int64_t per_chain = num_samples / o_.chains;
  const int64_t evals = prior.generator() ? prior.generator()->evaluations_per_call() : 1;
  // Warm start, one evaluation at the start of the chain, one per proposal (all with gradient).
  return o_.chains * (o_.warm_start_steps + 1 + o_.burn_in + per_chain * o_.thinning) * evals;
}

namespace {

at::Tensor per_row(const at::Tensor& h, const at::Tensor& like) {
  Shape s(static_cast<size_t>(like.dim()), 1);
  s[0] = like.size(0);
  return h.reshape(s);
}

struct Evaluation {
  at::Tensor u, r, grad, x;  // U(z) [B], R(Phi(z)) [B], grad U [B, *latent], Phi(z) [B, *data]
};

}  // namespace

SamplerOutput NoiseMala::run(const Problem& problem, int64_t num_samples,
                             const std::vector<uint64_t>& chain_seeds) const {
  at::AutoGradMode grad_mode(true);
  const auto& phi = problem.generator("noise_mala");
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
  TraceAccumulator warm_loss, chain_loss, acceptance, step_trace;

  auto evaluate = [&](const at::Tensor& z) {
    auto leaf = z.detach().requires_grad_(true);
    auto x = problem.generate(leaf, true, out.sampling_nfe);
    auto r = problem.potential(x);
    auto u = o_.prior_scale * 0.5 * leaf.flatten(1).pow(2).sum(1) + r;
    auto g = torch::autograd::grad({u.sum()}, {leaf})[0];
    return Evaluation{u.detach(), r.detach(), g.detach(), x.detach()};
  };
  auto message = [&](const std::string& what) {
    return what + " (step_size=" + format_value(o_.step_size) + ", adapt_steps=" + std::to_string(o_.adapt_steps) +
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
    std::vector<std::vector<at::Tensor>> store(n_chains);
    std::vector<int64_t> accepted(n_chains, 0);
    Evaluation cur = evaluate(z);
    at::Tensor h = at::full({chains.size()}, o_.step_size, z.options());
    std::unique_ptr<DualAveraging> adapt;
    if (o_.adapt_steps > 0) adapt = std::make_unique<DualAveraging>(h, o_.target_acceptance);
    std::vector<int64_t> keep;
    for (int64_t t = 1; t <= chain_steps && !chains.empty(); ++t) {
      auto xi = randn_per_chain(gens, chains.live, latent, dtype);
      std::vector<at::Tensor> us;
      for (auto c : chains.live) us.push_back(at::rand({1}, gens[c], at::TensorOptions().dtype(at::kDouble)));
      auto log_u = at::cat(us).log();
      auto hb = per_row(h, z);
      auto zp = z - hb * cur.grad + (2.0 * hb).sqrt() * xi;
      Evaluation prop = evaluate(zp);
      // log q(z | z') - log q(z' | z), q(a | b) = N(a; b - h grad U(b), 2h I).
      auto back = (z - zp + hb * prop.grad).flatten(1).pow(2).sum(1) / (4.0 * h);
      auto fwd = 0.5 * xi.flatten(1).pow(2).sum(1);
      auto log_alpha = (cur.u - prop.u - back + fwd).to(at::kDouble);
      auto finite = at::isfinite(log_alpha).logical_and(at::isfinite(prop.grad.flatten(1)).all(1));
      log_alpha = at::where(finite, log_alpha, at::full_like(log_alpha, -INFINITY));
      auto accept = log_u < log_alpha;
      auto prob = log_alpha.clamp_max(0.0).exp();
      {
        auto acc = accept.accessor<bool, 1>();
        for (int64_t i = 0; i < chains.size(); ++i) accepted[chains.live[i]] += acc[i] ? 1 : 0;
      }
      auto a_z = per_row(accept, z), a_x = per_row(accept, cur.x);
      z = at::where(a_z, zp, z);
      cur.grad = at::where(a_z, prop.grad, cur.grad);
      cur.x = at::where(a_x, prop.x, cur.x);
      cur.u = at::where(accept, prop.u, cur.u);
      cur.r = at::where(accept, prop.r, cur.r);
      acceptance.add(static_cast<size_t>(t - 1), prob.sum().item<double>(), chains.size());
      step_trace.add(static_cast<size_t>(t - 1), h.sum().item<double>(), chains.size());
      chain_loss.add(static_cast<size_t>(t - 1), cur.r.sum().item<double>(), chains.size());
      if (adapt && t <= o_.adapt_steps) {
        h = adapt->update(prob.to(h.scalar_type()));
        if (t == o_.adapt_steps) h = adapt->final_step();  // the averaged iterate from here on
      }

      auto ok = finite_and_bounded(z, at::scalar_tensor(o_.divergence_threshold, z.options()));
      if (chains.check(ok, out, [&](int64_t c) {
            return message("chain " + std::to_string(c) + " diverged (||z||^2/dim > " +
                           format_value(o_.divergence_threshold) + ") at chain step " + std::to_string(t));
          }, keep)) {
        if (chains.empty()) break;
        z = select_rows(z, keep);
        h = select_rows(h, keep);
        cur = Evaluation{select_rows(cur.u, keep), select_rows(cur.r, keep), select_rows(cur.grad, keep),
                         select_rows(cur.x, keep)};
        if (adapt) adapt->keep_rows(keep);
      }
      if (t > o_.burn_in && (t - o_.burn_in) % o_.thinning == 0)
        for (int64_t i = 0; i < chains.size(); ++i) store[chains.live[i]].push_back(cur.x[i]);
    }
    // A chain that never moved is a point mass at its start, not a posterior sample.
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
  out.trace["step_size"] = step_trace.mean();
  return out;
}

namespace {
SamplerRegistrar reg_noise_mala(
    {"noise_mala",
     "MALA in noise space: Langevin proposals on z of Phi with a Metropolis-Hastings correction (exact for pi(z)); "
     "optional dual-averaging step size",
     {OptionSpec::integer("chains", 1, "independent chains; samples_per_measurement / chains kept per chain")
          .at_least(1),
      OptionSpec::integer("batch_size", 0, "chains evaluated together (0 = all); results do not depend on it")
          .at_least(0)
          .execution(),
      OptionSpec::integer("warm_start_steps", 400, "Adam steps on ||y - A(Phi(z))||^2 before the chain").at_least(0),
      OptionSpec::real("warm_start_lr", 5e-3, "Adam learning rate of the warm start").above(0),
      OptionSpec::real("step_size", 1e-4, "h: proposal step (the initial value when adapt_steps > 0)").above(0),
      OptionSpec::integer("burn_in", 0, "chain steps discarded before keeping samples").at_least(0),
      OptionSpec::integer("thinning", 1, "keep every thinning-th iterate").at_least(1),
      OptionSpec::real("prior_scale", 1.0, "weight of the N(0, I) prior term of U(z)").above(0),
      OptionSpec::integer("adapt_steps", 0,
                          "dual-averaging adaptation of h per chain during the first adapt_steps burn-in steps "
                          "(0 = fixed h; must not exceed burn_in)")
          .at_least(0),
      OptionSpec::real("target_acceptance", 0.574, "acceptance rate the adaptation aims at").above(0).at_most(0.99),
      OptionSpec::real("divergence_threshold", 1e4,
                       "a chain with ||z||^2/dim above this is stopped and marked diverged")
          .above(0)},
     [](const Options& o) { return std::make_unique<NoiseMala>(NoiseMalaOptions::from(o)); }});
}  // namespace

}  // namespace psbench
