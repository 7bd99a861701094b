// TDS, the twisted diffusion sampler (Wu, Trippe, Naesseth, Blei, Cunningham; NeurIPS 2023): sequential Monte
// Carlo along the reverse diffusion with twisting functions
//   p~_k(y | x) = p(y | D(x, sigma_k)) = exp(-R(D(x, sigma_k))),  R(x) = ||y - A(x)||^2 / (2 sigma_y^2),
// the likelihood at the denoiser's x0 estimate (any differentiable A), and the twisted proposal
//   q(x' | x) = N(m + (sigma^2 - sigma'^2) grad_x log p~_k(y | x), v I),
//   m = a x + (1 - a) D(x, sigma) = x + (sigma^2 - sigma'^2) grad log p_sigma(x),
//   a = sigma'^2 / sigma^2,  v = sigma'^2 (1 - a)
// (the prior's ancestral kernel p(x' | x) = N(m, v I) with the twist's score added to the prior's). The weights
//   w_{k+1} = p(x' | x) p~_{k+1}(y | x') / (q(x' | x) p~_k(y | x)),   w_0 = p~_0(y | x_0)
// make the particles target the prior chain conditioned on y: exact as P grows whatever the twist, since at
// sigma = 0 the twist is the likelihood itself. The last step to sigma = 0 is the prior's deterministic
// x' = D(x, sigma_{S-1}), so its weight p(y | D(x)) / p~_{S-1}(y | x) is exactly 1. twist_scale lambda < 1 twists
// by p~_k^lambda instead (a softer proposal where the plain twist's gradient throws particles out: it is the
// likelihood at a point estimate, far sharper than p(y | x_sigma) at high noise); the last weight is then
// p(y | D(x))^(1 - lambda), and the target stays exact. Start: x_0 from
// N(0, sigma_max^2 I) (the noised prior taken as that, as every diffusion sampler's start is).
//
// Step k evaluates D with its gradient at the particles of level k (one forward+backward per particle), adds the
// twist's part of the previous transition's weight, resamples (particles with their D, twist and gradient) when
// ESS < resample_ess * P, then proposes level k + 1 and adds p / q. A run's samples are draws from its final
// weighted particles.
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "baselines/smc.h"
#include "nn/karras.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct TdsOptions {
  int64_t steps = 100;
  double twist_scale = 1.0;
  SmcOptions smc;
  static const OptionSchema<TdsOptions>& schema() {
    static const auto s = [] {
      using O = TdsOptions;
      OptionSchema<O> s;
      s.integer(&O::steps, "steps", 100,
                "S: noise levels of the Karras grid (rho = 7) before 0; one denoiser call with its gradient per particle each")
          .at_least(1);
      s.real(&O::twist_scale, "twist_scale", 1.0,
             "lambda: twists p~_k^lambda before the last level (softer guidance for lambda < 1); the last step's weight "
             "p(y | x0)^(1 - lambda) keeps the target exact")
          .above(0)
          .at_most(1);
      s.group(&O::smc, SmcOptions::schema());
      return s;
    }();
    return s;
  }
};

class Tds : public SmcKernel {
 public:
  using Options = TdsOptions;
  struct State {
    at::Tensor x;         // [B, P, n]: the particles at the current level (prior dtype)
    at::Tensor logw;      // [B, P] float64
    at::Tensor log_twist; // [B, P] float64: log p~ at the particles' previous level (0 before the first step)
    at::Tensor out;       // [B, J, *data]: the run's samples, after the last step
    std::vector<double> sigmas;
    double sigma_data = 0.5;
    void keep_rows(const at::Tensor& rows) {
      x = keep_defined_rows(x, rows);
      logw = keep_defined_rows(logw, rows);
      log_twist = keep_defined_rows(log_twist, rows);
      out = keep_defined_rows(out, rows);
    }
  };
  explicit Tds(Options o) : SmcKernel("tds", o.steps, o.smc), o_(o) {}

  Needs needs() const { return {.denoiser = true}; }

  State init(const StepContext& ctx) const {
    const auto& den = ctx.problem.denoiser("tds");
    State s;
    s.sigmas = reverse_sigmas(o_.smc.grid, o_.steps, den, "tds");
    s.sigma_data = den.sigma_data();
    const int64_t n = numel(ctx.problem.prior().data_shape());
    s.x = s.sigmas[0] * ctx.rng.normal({o_.smc.particles, n});  // [B, P, n]
    s.logw = at::zeros({s.x.size(0), o_.smc.particles}, at::TensorOptions().dtype(at::kDouble));
    s.log_twist = at::zeros_like(s.logw);
    return s;
  }

  Step<State> step(State s, const StepContext& ctx) const {
    const double sig = s.sigmas[ctx.t], sig_next = s.sigmas[ctx.t + 1];
    const int64_t b = s.x.size(0), p = s.x.size(1), n = s.x.size(2);
    Shape flat{b * p};
    for (auto dim : ctx.problem.prior().data_shape()) flat.push_back(dim);
    // The twist at this level, its gradient, and D.
    at::Tensor d, log_twist, grad;
    {
      at::AutoGradMode grad_mode(true);
      auto leaf = s.x.reshape(flat).detach().requires_grad_(true);
      auto den = ctx.problem.denoise(leaf, at::full({b * p}, sig, leaf.options()), true, ctx.nfe);
      auto lt = -o_.twist_scale * ctx.problem.potential(den);
      grad = torch::autograd::grad({lt.sum()}, {leaf})[0].detach().view({b, p, n});
      d = den.detach().view({b, p, n});
      log_twist = lt.detach().to(at::kDouble).view({b, p});
    }
    Step<State> out;
    s.logw = s.logw + log_twist - s.log_twist;
    auto idx = smc_resample(s.logw, o_.smc, ctx.rng, out.info);
    auto x = smc_gather(s.x, idx);
    d = smc_gather(d, idx);
    grad = smc_gather(grad, idx);
    s.log_twist = log_twist.gather(1, idx);
    out.info.add("log_twist", s.log_twist.mean(1));

    if (sig_next > 0) {
      const double a = sig_next * sig_next / (sig * sig), var = sig_next * sig_next * (1.0 - a);
      auto m = a * x + (1.0 - a) * d;
      auto shift = (sig * sig - sig_next * sig_next) * grad;
      auto noise = std::sqrt(var) * ctx.rng.normal({p, n});
      s.x = m + shift + noise;  // x' - m = shift + noise, x' - (m + shift) = noise
      // log p(x' | x) - log q(x' | x) = (||noise||^2 - ||shift + noise||^2) / (2 v)
      s.logw = s.logw + ((noise.pow(2) - (shift + noise).pow(2)).sum(2).to(at::kDouble)) / (2.0 * var);
    } else {
      // sigma' = 0: the deterministic last step; its weight p(y | D(x)) / p~^lambda(y | x) = p(y | D(x))^(1 - lambda).
      s.x = d;
      if (o_.twist_scale != 1.0) s.logw = s.logw + (1.0 / o_.twist_scale - 1.0) * s.log_twist;
    }
    smc_drop_runaways(s.logw, s.x, o_.smc, sig_next, s.sigma_data);
    if (ctx.t + 1 == o_.steps)
      s.out = smc_as_samples(smc_final_draws(s.x, s.logw, o_.smc, ctx.rng, out.info), b, ctx.problem.prior());
    out.state = std::move(s);
    return out;
  }

 private:
  Options o_;
};

SamplerRegistrar reg_tds(kernel_entry<Tds>(
    "tds",
    "TDS (twisted diffusion sampler, Wu et al. 2023): sequential Monte Carlo of P particles along the reverse "
    "diffusion, twisted by the likelihood at the denoiser's x0 estimate and proposing with its gradient; "
    "asymptotically exact in P for any differentiable A. K / samples_per_run runs per measurement, P denoiser "
    "calls with gradient per level. Budget B per measurement: S = floor(B / (runs x P)) levels"));

}  // namespace
}  // namespace psbench
