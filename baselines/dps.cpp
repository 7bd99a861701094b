// DPS (Chung et al. 2023) and the engine it shares with LGD: see baselines/guided_diffusion.h.
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "baselines/guided_diffusion.h"
#include "baselines/reverse_diffusion.h"
#include "priors/ode_generator.h"
#include "samplers/chain_util.h"
#include "samplers/driver.h"

namespace psbench {

const OptionSchema<GuidedDiffusionOptions>& GuidedDiffusionOptions::dps_schema() {
  static const auto s = [] {
    using O = GuidedDiffusionOptions;
    OptionSchema<O> s;
    s.integer(&O::steps, "steps", 100, "S: Euler-ancestral steps on the Karras grid (rho 7)").at_least(1);
    s.real(&O::step_scale, "step_scale", 1.0,
           "zeta' (convention paper: zeta_t = zeta' / ||y - A(x0_hat)||) or the official code's scale")
        .above(0);
    s.choice(&O::convention, "convention", O::Convention::Paper,
             {{"paper", O::Convention::Paper}, {"code", O::Convention::Code}, {"cps", O::Convention::Cps}},
             "paper: zeta' grad ||r||^2 / ||r||; code: scale grad ||r|| (= zeta' scale/2), per sample; cps: the "
             "noise-space Langevin paper's code: x0_hat clamped to [-1, 1] and used for the reverse step (DPS-CM: no "
             "denoiser call), step step_scale * sigma_i * grad ||r|| (LGD: sum over draws, r_t = r_scale sigma / "
             "sqrt(1 + sigma^2))");
    s.choice(&O::x0_estimate, "x0_estimate", O::X0::Denoiser,
             {{"denoiser", O::X0::Denoiser}, {"consistency", O::X0::Consistency}},
             "x0_hat for the guidance: Tweedie D(x_t, sigma) (DPS-DM) or the consistency function f(x_t, sigma) "
             "(DPS-CM)");
    s.choice(&O::guidance_frame, "guidance_frame", O::Frame::Ve, {{"ve", O::Frame::Ve}, {"vp", O::Frame::Vp}},
             "ve: the guidance step in psbench's variance-exploding x_sigma; vp: in the DPS paper's variance-preserving "
             "x_t, i.e. times sqrt((1 + sigma_i^2)(1 + sigma_(i+1)^2)) here")
        .added_later();
    add_divergence_threshold(s, &O::divergence_threshold);
    add_noise_grid(s, &O::grid);
    return s;
  }();
  return s;
}

Needs GuidedDiffusion::needs() const {
  Needs n;
  n.denoiser = true;
  n.consistency = o_.x0_estimate == Options::X0::Consistency;
  return n;
}

int64_t GuidedDiffusion::evaluations_per_step(const Prior& prior) const {
  if (o_.x0_estimate == Options::X0::Consistency && prior.consistency()) {
    // The stated method also calls D for the reverse step; the cps convention steps with x0_hat.
    const int64_t reverse_step = o_.convention == Options::Convention::Cps ? 0 : 1;
    return prior.consistency()->consistency_evaluations() + reverse_step;
  }
  return 1;  // LGD's draws around x0_hat cost no network call
}

int64_t GuidedDiffusion::planned_nfe(int64_t n, const Prior& prior) const {
  return n * o_.steps * evaluations_per_step(prior);
}

BudgetFit GuidedDiffusion::fit_budget(int64_t budget, int64_t n, const Prior& prior) const {
  return diffusion_fit_budget(name_, budget, n, evaluations_per_step(prior));
}

GuidedDiffusion::State GuidedDiffusion::init(const StepContext& ctx) const {
  const auto& den = ctx.problem.denoiser(name_);
  State s;
  s.sigmas = reverse_sigmas(o_.grid, o_.steps, den, name_);
  s.sigma_data = den.sigma_data();
  s.x = s.sigmas[0] * ctx.rng.normal(ctx.problem.prior().data_shape());
  return s;
}

Step<GuidedDiffusion::State> GuidedDiffusion::step(State st, const StepContext& ctx) const {
  at::AutoGradMode grad_mode(true);
  const auto& problem = ctx.problem;
  const Shape data = problem.prior().data_shape();
  const double two_s2 = 2.0 * problem.noise().sigma_y * problem.noise().sigma_y;
  const double s = st.sigmas[ctx.t], s_next = st.sigmas[ctx.t + 1], sd = st.sigma_data;
  at::Tensor& x = st.x;
  const int64_t b = x.size(0);
  auto sig = at::full({b}, s, x.options());
  auto leaf = x.detach().requires_grad_(true);
  const bool cps = o_.convention == Options::Convention::Cps;
  at::Tensor d_x, x0;
  if (o_.x0_estimate == Options::X0::Consistency) {
    if (!cps) {
      at::NoGradGuard no_grad;
      d_x = problem.denoise(leaf.detach(), sig, false, ctx.nfe);
    }
    x0 = problem.consistency(leaf, sig, true, ctx.nfe);
  } else {
    x0 = problem.denoise(leaf, sig, true, ctx.nfe);
  }
  if (cps) x0 = x0.clamp(-1.0, 1.0);
  if (!d_x.defined()) d_x = x0.detach();
  // Per-row loss. Stated method and DPS's code: L in units of ||y - A(.)||^2, at x0_hat (DPS) or
  // aggregated over draws around it (LGD). cps: the sum over draws of unsquared norms ||y - A(x0_j)||.
  const auto sq_residual = [&](const at::Tensor& xs) { return two_s2 * problem.potential(xs); };
  at::Tensor loss, norm;
  if (o_.mc_draws > 0) {
    const double r = cps ? o_.r_scale * s / std::sqrt(1.0 + s * s) : o_.r_scale * s * sd / std::sqrt(s * s + sd * sd);
    auto eps = ctx.rng.normal_block(o_.mc_draws, data);  // [b, m, *data]
    auto draws = (x0.unsqueeze(1) + r * eps).flatten(0, 1);
    auto l = sq_residual(draws).reshape({b, o_.mc_draws});
    if (cps) {
      auto norms = l.clamp_min(1e-300).sqrt();
      loss = norms.sum(1);
      norm = norms.detach().mean(1);
    } else {
      loss = o_.aggregate == Options::Aggregate::Mean
                 ? l.mean(1)
                 : -two_s2 * (at::logsumexp(-l / two_s2, 1) - std::log(static_cast<double>(o_.mc_draws)));
    }
  } else {
    loss = sq_residual(x0);
    if (cps) loss = loss.clamp_min(1e-300).sqrt();
  }
  auto grad = torch::autograd::grad({loss.sum()}, {leaf})[0];
  Shape bshape(static_cast<size_t>(x.dim()), 1);
  bshape[0] = b;
  at::Tensor guidance;
  if (cps) {
    if (!norm.defined()) norm = loss.detach();
    guidance = (o_.step_scale * s) * grad;
  } else {
    norm = loss.detach().clamp_min(1e-300).sqrt();
    // paper: zeta' grad L / ||r||; code: scale grad ||r|| = scale grad L / (2 ||r||).
    const double coef = o_.convention == Options::Convention::Paper ? o_.step_scale : 0.5 * o_.step_scale;
    guidance = coef * grad / norm.reshape(bshape);
  }
  if (o_.guidance_frame == Options::Frame::Vp) guidance = guidance * std::sqrt((1.0 + s * s) * (1.0 + s_next * s_next));
  Step<State> out;
  out.info.add("residual_norm", norm);
  out.info.add("guidance_norm", guidance.flatten(1).norm(2, 1));

  // Euler-ancestral step from s to s_next with d_x: D(x, s), or x0_hat under the cps convention.
  const double s_up =
      s_next > 0 ? std::min(s_next, std::sqrt(s_next * s_next * (s * s - s_next * s_next) / (s * s))) : 0.0;
  const double s_down = std::sqrt(std::max(0.0, s_next * s_next - s_up * s_up));
  auto xd = x.detach();
  auto x_next = xd + (s_down - s) * (xd - d_x) / s;
  if (s_up > 0) x_next = x_next + s_up * ctx.rng.normal(data);
  x = (x_next - guidance).detach();
  out.state = std::move(st);
  return out;
}

at::Tensor GuidedDiffusion::ok(const State& s, const StepContext& ctx) const {
  return diffusion_ok(s.x, s.sigmas[ctx.t + 1], s.sigma_data, o_.divergence_threshold);
}

std::string GuidedDiffusion::divergence(const StepContext& ctx) const {
  const auto& den = ctx.problem.denoiser(name_);
  return diffusion_divergence(o_.divergence_threshold, reverse_sigmas(o_.grid, o_.steps, den, name_)[ctx.t]) +
         "; step_scale=" + format_value(o_.step_scale);
}

namespace {
SamplerRegistrar reg_dps(kernel_entry<GuidedDiffusion>(
    "dps",
    "DPS: Euler-ancestral reverse diffusion with a gradient step on ||y - A(x0_hat)|| (x0_hat from the denoiser, or "
    "the consistency function: DPS-CM); one run per sample. Budget B per measurement: steps = floor(B / (K c)), c = "
    "evaluations per step (1; DPS-CM: consistency_evaluations + 1, + 0 under convention cps)",
    GuidedDiffusionOptions::dps_schema(), [](const GuidedDiffusionOptions& o) { return GuidedDiffusion("dps", o); }));
}  // namespace

}  // namespace psbench
