#include "samplers/noise_langevin.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "core/rng.h"

namespace psbench {

NoiseLangevinOptions NoiseLangevinOptions::from(const Options& o) {
  NoiseLangevinOptions r;
  r.chains = o.get_int("chains");
  r.batch_size = o.get_int("batch_size");
  r.warm_start_steps = o.get_int("warm_start_steps");
  r.warm_start_lr = o.get_real("warm_start_lr");
  r.step_size = o.get_real("step_size");
  r.burn_in = o.get_int("burn_in");
  r.thinning = o.get_int("thinning");
  r.prior_scale = o.get_real("prior_scale");
  r.divergence_threshold = o.get_real("divergence_threshold");
  return r;
}

int64_t NoiseLangevin::num_chains(int64_t num_samples) const {
  if (num_samples % o_.chains != 0)
    throw ConfigError("sampler noise_langevin: samples_per_measurement=" + std::to_string(num_samples) +
                      " is not a multiple of chains=" + std::to_string(o_.chains));
  return o_.chains;
}

int64_t NoiseLangevin::planned_nfe(int64_t num_samples, const Prior& prior) const {
  const int64_t per_chain = num_samples / o_.chains;
  const int64_t evals = prior.generator() ? prior.generator()->evaluations_per_call() : 1;
  return o_.chains * (o_.warm_start_steps + o_.burn_in + per_chain * o_.thinning + 1) * evals;
}

namespace {

// Rows whose state and loss are finite and whose ||z||^2/dim stays below the threshold.
std::vector<int64_t> finite_rows(const at::Tensor& z, const at::Tensor& loss, double threshold) {
  auto zf = z.flatten(1);
  auto ok = at::isfinite(zf).all(1).logical_and(at::isfinite(loss)).logical_and(zf.pow(2).mean(1) <= threshold);
  std::vector<int64_t> keep;
  auto acc = ok.accessor<bool, 1>();
  for (int64_t i = 0; i < ok.size(0); ++i)
    if (acc[i]) keep.push_back(i);
  return keep;
}

at::Tensor rows(const at::Tensor& t, const std::vector<int64_t>& idx) {
  return t.index_select(0, at::tensor(idx, at::kLong));
}

struct Accumulator {
  std::vector<double> sum;
  std::vector<int64_t> count;
  void add(size_t step, double total, int64_t n) {
    if (sum.size() <= step) { sum.resize(step + 1, 0.0); count.resize(step + 1, 0); }
    sum[step] += total;
    count[step] += n;
  }
  std::vector<double> mean() const {
    std::vector<double> m(sum.size());
    for (size_t i = 0; i < sum.size(); ++i) m[i] = count[i] ? sum[i] / static_cast<double>(count[i]) : 0.0;
    return m;
  }
};

}  // namespace

SamplerOutput NoiseLangevin::run(const Problem& problem, int64_t num_samples,
                                 const std::vector<uint64_t>& chain_seeds) const {
  at::AutoGradMode grad_mode(true);
  const auto& phi = problem.generator("noise_langevin");
  const Shape latent = phi.latent_shape();
  const Shape data = problem.prior().data_shape();
  const auto dtype = problem.prior().dtype();
  const int64_t n_chains = num_chains(num_samples);
  const int64_t per_chain = num_samples / n_chains;
  const int64_t chain_steps = o_.burn_in + per_chain * o_.thinning;
  const int64_t batch = o_.batch_size > 0 ? o_.batch_size : n_chains;
  const double tau = o_.step_size, noise_scale = std::sqrt(2.0 * o_.step_size);
  const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

  std::vector<at::Generator> gens;
  for (auto s : chain_seeds) gens.push_back(make_generator(s));

  SamplerOutput out;
  out.diverged.assign(n_chains, 0);
  std::vector<at::Tensor> kept(n_chains);  // [per_chain, *data] per chain
  Accumulator warm_loss, chain_loss, diverged_trace;
  int64_t diverged_total = 0;

  auto mark_diverged = [&](std::vector<int64_t>& live, const std::vector<int64_t>& keep_rows,
                           const std::string& phase, int64_t step) {
    if (static_cast<int64_t>(keep_rows.size()) == static_cast<int64_t>(live.size())) return false;
    std::vector<int64_t> still;
    size_t k = 0;
    for (size_t i = 0; i < live.size(); ++i) {
      if (k < keep_rows.size() && keep_rows[k] == static_cast<int64_t>(i)) { still.push_back(live[i]); ++k; }
      else {
        out.diverged[live[i]] = 1;
        ++diverged_total;
        if (out.divergence_message.empty())
          out.divergence_message = "chain " + std::to_string(live[i]) + " diverged (non-finite or ||z||^2/dim > " +
                                   format_value(o_.divergence_threshold) + ") at " + phase +
                                   " step " + std::to_string(step) + " (step_size=" + format_value(tau) +
                                   ", warm_start_lr=" + format_value(o_.warm_start_lr) + ")";
      }
    }
    live = still;
    return true;
  };

  for (int64_t first = 0; first < n_chains; first += batch) {
    std::vector<int64_t> live;
    for (int64_t c = first; c < std::min(n_chains, first + batch); ++c) live.push_back(c);

    // Warm start: z0 ~ N(0, I), then Adam on ||y - A(Phi(z))||^2 only.
    Stopwatch warm_clock;
    at::Tensor z = randn_per_chain(gens, live, latent, dtype);
    at::Tensor m1 = at::zeros_like(z), m2 = at::zeros_like(z);
    for (int64_t k = 0; k < o_.warm_start_steps && !live.empty(); ++k) {
      z.requires_grad_(true);
      auto x = problem.generate(z, true, out.warmup_nfe);
      auto r = problem.potential(x);  // R = ||.||^2 / (2 sigma_y^2): same minimiser, reported scale
      auto grad = torch::autograd::grad({r.sum()}, {z})[0] * (2.0 * problem.noise().sigma_y * problem.noise().sigma_y);
      z = z.detach();
      auto rd = r.detach();
      warm_loss.add(k, rd.sum().item<double>(), static_cast<int64_t>(live.size()));
      m1 = beta1 * m1 + (1 - beta1) * grad;
      m2 = beta2 * m2 + (1 - beta2) * grad * grad;
      const double bc1 = 1 - std::pow(beta1, k + 1), bc2 = 1 - std::pow(beta2, k + 1);
      z = z - o_.warm_start_lr * (m1 / bc1) / ((m2 / bc2).sqrt() + eps);
      auto keep = finite_rows(z, rd, o_.divergence_threshold);
      if (mark_diverged(live, keep, "warm-up", k)) {
        if (live.empty()) break;
        z = rows(z, keep); m1 = rows(m1, keep); m2 = rows(m2, keep);
      }
    }
    out.warmup_seconds += warm_clock.seconds();

    // Chain: z <- z - tau grad[prior_scale |z|^2/2 + R(Phi(z))] + sqrt(2 tau) xi. The image of each
    // iterate comes out of the same forward pass that gives the next gradient.
    Stopwatch chain_clock;
    if (!live.empty()) {
      std::vector<std::vector<at::Tensor>> store(n_chains);
      // `leaf` is the tensor Phi was evaluated at; `sel` lists its rows that are still live (empty = all),
      // so a divergence never forces a re-evaluation of the survivors.
      at::Tensor leaf = z.detach().requires_grad_(true);
      at::Tensor x = problem.generate(leaf, true, out.sampling_nfe);
      std::vector<int64_t> sel;
      for (int64_t t = 1; t <= chain_steps && !live.empty(); ++t) {
        auto xs = sel.empty() ? x : rows(x, sel);
        auto zs = sel.empty() ? leaf : rows(leaf, sel);
        auto r = problem.potential(xs);
        auto u = o_.prior_scale * 0.5 * zs.flatten(1).pow(2).sum(1) + r;
        auto grad = torch::autograd::grad({u.sum()}, {leaf})[0];
        if (!sel.empty()) grad = rows(grad, sel);
        chain_loss.add(t - 1, r.detach().sum().item<double>(), static_cast<int64_t>(live.size()));
        auto xi = randn_per_chain(gens, live, latent, dtype);
        auto znew = zs.detach() - tau * grad + noise_scale * xi;
        const bool last = t == chain_steps;
        leaf = last ? znew : znew.requires_grad_(true);
        x = problem.generate(leaf, !last, out.sampling_nfe);
        auto xd = x.detach();
        auto keep = finite_rows(znew.detach(), xd.flatten(1).pow(2).sum(1), o_.divergence_threshold);
        sel.clear();
        if (mark_diverged(live, keep, "chain", t)) {
          sel = keep;
          xd = rows(xd, sel);
        }
        diverged_trace.add(t - 1, static_cast<double>(diverged_total), 1);
        const bool keep_sample = t > o_.burn_in && (t - o_.burn_in) % o_.thinning == 0;
        if (keep_sample)
          for (size_t i = 0; i < live.size(); ++i) store[live[i]].push_back(xd[i]);
      }
      for (auto c : live)
        if (!out.diverged[c]) kept[c] = at::stack(store[c]);
    }
    out.sampling_seconds += chain_clock.seconds();
  }

  std::vector<at::Tensor> all;
  for (int64_t c = 0; c < n_chains; ++c)
    if (!out.diverged[c] && kept[c].defined()) all.push_back(kept[c]);
  Shape empty_shape{0};
  empty_shape.insert(empty_shape.end(), data.begin(), data.end());
  out.samples = all.empty() ? at::empty(empty_shape, at::TensorOptions().dtype(dtype)) : at::cat(all);
  out.trace["warmup_loss"] = warm_loss.mean();
  out.trace["chain_loss"] = chain_loss.mean();
  out.trace["diverged_chains"] = diverged_trace.mean();
  return out;
}

namespace {
SamplerRegistrar reg_noise_langevin(
    {"noise_langevin",
     "noise-space Langevin (CPS): Adam warm start on the data fit, then unadjusted Langevin on z of Phi",
     {OptionSpec::integer("chains", 1, "independent chains; samples_per_measurement / chains kept per chain")
          .at_least(1),
      OptionSpec::integer("batch_size", 0, "chains evaluated together (0 = all); results do not depend on it")
          .at_least(0)
          .execution(),
      OptionSpec::integer("warm_start_steps", 400, "K: Adam steps on ||y - A(Phi(z))||^2").at_least(0),
      OptionSpec::real("warm_start_lr", 5e-3, "Adam learning rate of the warm start").above(0),
      OptionSpec::real("step_size", 1e-4, "tau: Langevin step size").above(0),
      OptionSpec::integer("burn_in", 0, "chain steps discarded before keeping samples").at_least(0),
      OptionSpec::integer("thinning", 1, "keep every thinning-th iterate").at_least(1),
      OptionSpec::real("prior_scale", 1.0,
                       "weight of the N(0, I) prior drift; 1/sigma_max^2 = 1.5625e-4 reproduces the official code")
          .above(0),
      OptionSpec::real("divergence_threshold", 1e4,
                       "a chain with ||z||^2/dim above this (or non-finite) is stopped and marked diverged")
          .above(0)},
     [](const Options& o) { return std::make_unique<NoiseLangevin>(NoiseLangevinOptions::from(o)); }});
}  // namespace

}  // namespace psbench
