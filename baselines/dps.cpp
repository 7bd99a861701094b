#include "baselines/dps.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "core/rng.h"
#include "priors/ode_generator.h"
#include "samplers/chain_util.h"

namespace psbench {

GuidedDiffusionOptions GuidedDiffusionOptions::from(const Options& o, const std::string& name) {
  GuidedDiffusionOptions r;
  r.name = name;
  r.steps = o.get_int("steps");
  r.step_scale = o.get_real("step_scale");
  r.convention = o.get_string("convention");
  r.x0_estimate = o.get_string("x0_estimate");
  r.batch_size = o.get_int("batch_size");
  r.divergence_threshold = o.get_real("divergence_threshold");
  if (name == "lgd") {
    r.mc_draws = o.get_int("mc_draws");
    r.r_scale = o.get_real("r_scale");
    r.aggregate = o.get_string("aggregate");
  }
  return r;
}

int64_t GuidedDiffusion::planned_nfe(int64_t num_samples, const Prior& prior) const {
  if (o_.x0_estimate == "consistency") {
    if (!prior.consistency())
      throw ConfigError("sampler " + o_.name + ": x0_estimate=consistency needs a consistency function f(x, sigma), "
                        "which prior '" + prior.name() + "' does not have");
    return num_samples * o_.steps * (prior.consistency()->consistency_evaluations() + 1);
  }
  return num_samples * o_.steps;
}

SamplerOutput GuidedDiffusion::run(const Problem& problem, int64_t num_samples,
                                   const std::vector<uint64_t>& chain_seeds) const {
  at::AutoGradMode grad_mode(true);
  const auto& den = problem.denoiser(o_.name);
  const bool use_cm = o_.x0_estimate == "consistency";
  if (use_cm) problem.consistency_function(o_.name);  // a clear error before any work
  const Shape data = problem.prior().data_shape();
  const auto dtype = problem.prior().dtype();
  const int64_t n_chains = num_chains(num_samples);
  const int64_t batch = o_.batch_size > 0 ? o_.batch_size : n_chains;
  const auto sigmas = karras_sigmas(o_.steps, den.sigma_min(), den.sigma_max());
  const double sd = den.sigma_data();
  const double two_s2 = 2.0 * problem.noise().sigma_y * problem.noise().sigma_y;

  std::vector<at::Generator> gens;
  for (auto s : chain_seeds) gens.push_back(make_generator(s));
  SamplerOutput out;
  out.diverged.assign(n_chains, 0);
  std::vector<at::Tensor> kept(n_chains);
  TraceAccumulator residual_trace, guidance_trace;

  Stopwatch clock;
  for (int64_t first = 0; first < n_chains; first += batch) {
    LiveChains chains;
    for (int64_t c = first; c < std::min(n_chains, first + batch); ++c) chains.live.push_back(c);
    at::Tensor x = sigmas[0] * randn_per_chain(gens, chains.live, data, dtype);
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < o_.steps && !chains.empty(); ++i) {
      const double s = sigmas[i], s_next = sigmas[i + 1];
      const int64_t b = chains.size();
      auto sig = at::full({b}, s, x.options());
      auto leaf = x.detach().requires_grad_(true);
      at::Tensor d_x, x0;
      if (use_cm) {
        {
          at::NoGradGuard no_grad;
          d_x = problem.denoise(leaf.detach(), sig, false, out.sampling_nfe);
        }
        x0 = problem.consistency(leaf, sig, true, out.sampling_nfe);
      } else {
        x0 = problem.denoise(leaf, sig, true, out.sampling_nfe);
        d_x = x0.detach();
      }
      // Loss in units of ||y - A(.)||^2: DPS at x0_hat; LGD aggregated over draws around it.
      at::Tensor loss;
      if (o_.mc_draws > 0) {
        const double r = o_.r_scale * s * sd / std::sqrt(s * s + sd * sd);
        auto eps = randn_block_per_chain(gens, chains.live, o_.mc_draws, data, dtype);  // [b, m, *data]
        auto draws = (x0.unsqueeze(1) + r * eps).flatten(0, 1);
        auto l = (two_s2 * problem.potential(draws)).reshape({b, o_.mc_draws});
        loss = o_.aggregate == "mean"
                   ? l.mean(1)
                   : -two_s2 * (at::logsumexp(-l / two_s2, 1) - std::log(static_cast<double>(o_.mc_draws)));
      } else {
        loss = two_s2 * problem.potential(x0);
      }
      auto grad = torch::autograd::grad({loss.sum()}, {leaf})[0];
      auto ld = loss.detach();
      auto norm = ld.clamp_min(1e-300).sqrt();
      // paper: zeta' grad L / ||r||; code: scale grad ||r|| = scale grad L / (2 ||r||).
      const double coef = o_.convention == "paper" ? o_.step_scale : 0.5 * o_.step_scale;
      Shape bshape(static_cast<size_t>(x.dim()), 1);
      bshape[0] = b;
      auto guidance = coef * grad / norm.reshape(bshape);
      residual_trace.add(static_cast<size_t>(i), norm.sum().item<double>(), b);
      guidance_trace.add(static_cast<size_t>(i), guidance.flatten(1).norm(2, 1).sum().item<double>(), b);

      // Euler-ancestral step from s to s_next with D(x, s).
      const double s_up = s_next > 0 ? std::min(s_next, std::sqrt(s_next * s_next * (s * s - s_next * s_next) / (s * s))) : 0.0;
      const double s_down = std::sqrt(std::max(0.0, s_next * s_next - s_up * s_up));
      auto xd = x.detach();
      auto x_next = xd + (s_down - s) * (xd - d_x) / s;
      if (s_up > 0) x_next = x_next + s_up * randn_per_chain(gens, chains.live, data, dtype);
      x = (x_next - guidance).detach();

      auto limit = at::scalar_tensor(o_.divergence_threshold * (s_next * s_next + sd * sd), x.options());
      if (chains.check(finite_and_bounded(x, limit), out, [&](int64_t c) {
            return "chain " + std::to_string(c) + " diverged (non-finite or ||x||^2/dim > " +
                   format_value(o_.divergence_threshold) + " (sigma^2 + sigma_data^2)) at step " + std::to_string(i) +
                   " (sigma=" + format_value(s) + ", step_scale=" + format_value(o_.step_scale) + ")";
          }, keep)) {
        if (chains.empty()) break;
        x = select_rows(x, keep);
      }
    }
    for (int64_t r = 0; r < chains.size(); ++r) kept[chains.live[r]] = x[r].unsqueeze(0);
  }
  out.sampling_seconds = clock.seconds();
  out.samples = assemble_samples(kept, out.diverged, data, dtype);
  out.trace["residual_norm"] = residual_trace.mean();
  out.trace["guidance_norm"] = guidance_trace.mean();
  return out;
}

std::vector<OptionSpec> guided_diffusion_option_specs(double default_scale) {
  return {OptionSpec::integer("steps", 100, "S: Euler-ancestral steps on the Karras grid (rho 7)").at_least(1),
          OptionSpec::real("step_scale", default_scale,
                           "zeta' (convention paper: zeta_t = zeta' / ||y - A(x0_hat)||) or the official code's scale")
              .above(0),
          OptionSpec::choice("convention", "paper", {"paper", "code"},
                             "paper: zeta' grad ||r||^2 / ||r||; code: scale grad ||r|| (= zeta' scale/2), per sample"),
          OptionSpec::choice("x0_estimate", "denoiser", {"denoiser", "consistency"},
                             "x0_hat for the guidance: Tweedie D(x_t, sigma) (DPS-DM) or the consistency function "
                             "f(x_t, sigma) (DPS-CM)"),
          OptionSpec::integer("batch_size", 0, "runs evaluated together (0 = all); results do not depend on it")
              .at_least(0)
              .execution(),
          OptionSpec::real("divergence_threshold", 1e4,
                           "a run with ||x||^2/dim above this times (sigma^2 + sigma_data^2), or non-finite, is "
                           "stopped and marked diverged")
              .above(0)};
}

namespace {
SamplerRegistrar reg_dps({"dps",
                          "DPS: Euler-ancestral reverse diffusion with a gradient step on ||y - A(x0_hat)|| (x0_hat from "
                          "the denoiser, or the consistency function: DPS-CM); one run per sample",
                          guided_diffusion_option_specs(1.0), [](const Options& o) {
                            return std::make_unique<GuidedDiffusion>(GuidedDiffusionOptions::from(o, "dps"));
                          }});
}  // namespace

}  // namespace psbench
