// RED-diff, variational posterior estimation with diffusion regularisation (Mardani, Song, Kautz, Vahdat; ICLR
// 2024), for any differentiable operator with Gaussian noise. It fits the mean mu of q = N(mu, 0) by descending
// the noise levels sigma_0 = sigma_max > ... > sigma_{S-1} = sigma_min (Karras grid, rho 7) with one optimiser
// step per level on
//   loss(mu) = ||y - A(mu)||^2 / (2 sigma_y^2) + lambda w(sigma) sg(eps_hat(x) - eps)^T mu,
//   x = mu + sigma eps, eps ~ N(0, I), eps_hat(x) = (x - D(x, sigma)) / sigma,  w(sigma) = sigma
// (w = sqrt(1 - abar_t) / sqrt(abar_t), the paper's "linear" inverse-SNR weight, is sigma here); the second term's
// gradient is the denoiser's score-matching residual, no backpropagation through the network. `convention: code`
// takes the authors' code instead: both terms as means (the residual over the n pixels, the data term over the m
// measurements) and the data term without 1 / sigma_y^2, weighted by obs_weight. Start: the operator's
// pseudo-inverse of y (the authors' code; `init: noise` starts from N(0, I) for operators without one). Optimiser:
// Adam with betas (0.9, 0.99) as the authors' code, or plain gradient descent (`optimizer: sgd`, which keeps every
// step affine on a Gaussian prior: tests/baselines/spectral_diffusion_test.cpp pins its law). The authors'
// defaults: lambda (grad_term_weight) 0.25, obs_weight 1, lr 0.1. Not a posterior sampler: it returns one fitted
// point per run, whose spread comes only from the eps draws. One forward denoiser evaluation per step and sample;
// the data term's gradient is a vector-Jacobian product through A only.
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "baselines/reverse_diffusion.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct ReddiffOptions {
  enum class Convention { Paper, Code };
  enum class Optimizer { Adam, Sgd };
  enum class Init { PseudoInverse, Noise };
  int64_t steps = 1000;
  double lambda = 0.25, lr = 0.1, obs_weight = 1.0;
  Convention convention = Convention::Paper;
  Optimizer optimizer = Optimizer::Adam;
  Init init = Init::PseudoInverse;
  double divergence_threshold = 1e4;
  static const OptionSchema<ReddiffOptions>& schema() {
    static const auto s = [] {
      using O = ReddiffOptions;
      OptionSchema<O> s;
      s.integer(&O::steps, "steps", 1000, "S: optimiser steps, one per level of the Karras grid (rho = 7)").at_least(1);
      s.real(&O::lambda, "lambda", 0.25, "lambda: weight of the denoising regulariser (the authors' grad_term_weight: 0.25)")
          .at_least(0);
      s.real(&O::lr, "lr", 0.1, "optimiser learning rate (the authors: 0.1)").above(0);
      s.real(&O::obs_weight, "obs_weight", 1.0, "convention code: weight of the mean data term (the authors: 1)").above(0);
      s.choice(&O::convention, "convention", O::Convention::Paper,
               {{"paper", O::Convention::Paper}, {"code", O::Convention::Code}},
               "paper: ||y - A mu||^2 / (2 sigma_y^2) + lambda sigma sg(eps_hat - eps)^T mu; code: the authors' means, "
               "obs_weight mean((y - A mu)^2) / 2 + lambda sigma mean(sg(eps_hat - eps) mu)");
      s.choice(&O::optimizer, "optimizer", O::Optimizer::Adam, {{"adam", O::Optimizer::Adam}, {"sgd", O::Optimizer::Sgd}},
               "adam (betas 0.9, 0.99, as the authors) or plain gradient descent");
      s.choice(&O::init, "init", O::Init::PseudoInverse,
               {{"pseudo_inverse", O::Init::PseudoInverse}, {"noise", O::Init::Noise}},
               "start: the operator's pseudo-inverse of y (the authors) or N(0, I)");
      add_divergence_threshold(s, &O::divergence_threshold);
      return s;
    }();
    return s;
  }
};

class Reddiff {
 public:
  using Options = ReddiffOptions;
  struct State {
    at::Tensor mu, m1, m2;  // the fitted mean and Adam's moments
    std::vector<double> sigmas;
    double sigma_data = 0.5;
    void keep_rows(const at::Tensor& rows) {
      mu = keep_defined_rows(mu, rows);
      m1 = keep_defined_rows(m1, rows);
      m2 = keep_defined_rows(m2, rows);
    }
  };
  explicit Reddiff(Options o) : o_(o) {}

  Needs needs() const { return {.denoiser = true}; }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return n; }
  std::vector<Phase> phases(int64_t, const Prior&) const { return {Phase::of("optimisation", o_.steps, false, Keep::Last)}; }
  int64_t planned_nfe(int64_t n, const Prior&) const { return n * o_.steps; }
  BudgetFit fit_budget(int64_t budget, int64_t n, const Prior&) const { return diffusion_fit_budget("reddiff", budget, n, 1); }

  State init(const StepContext& ctx) const {
    const auto& den = ctx.problem.denoiser("reddiff");
    const auto& op = ctx.problem.op();
    if (o_.init == Options::Init::PseudoInverse && !op.has_pseudo_inverse())
      throw ConfigError("sampler reddiff: init pseudo_inverse, and task '" + op.name() +
                        "' has no pseudo-inverse (use init: noise)");
    if (o_.convention == Options::Convention::Paper && !(ctx.problem.noise().sigma_y > 0))
      throw ConfigError("sampler reddiff: convention paper divides by sigma_y^2, and task '" + op.name() +
                        "' has sigma_y = 0 (use convention: code)");
    State s;
    s.sigmas = karras_sigmas(o_.steps, den.sigma_min(), den.sigma_max());
    s.sigma_data = den.sigma_data();
    const auto noise = ctx.rng.normal(ctx.problem.prior().data_shape());
    if (o_.init == Options::Init::Noise) {
      s.mu = noise;
    } else {
      at::NoGradGuard no_grad;
      s.mu = op.pseudo_inverse(ctx.problem.y()).to(noise.scalar_type()).expand_as(noise).contiguous();
    }
    s.m1 = at::zeros_like(s.mu);
    s.m2 = at::zeros_like(s.mu);
    return s;
  }
  State enter(State s, const StepContext&) const { return s; }

  Step<State> step(State s, const StepContext& ctx) const {
    const double sig = s.sigmas[ctx.t];
    const auto& problem = ctx.problem;
    const auto eps = ctx.rng.normal(problem.prior().data_shape());
    at::Tensor resid_grad, data_grad;
    {
      at::NoGradGuard no_grad;
      const auto x = s.mu + sig * eps;
      const auto eps_hat = (x - problem.denoise(x, at::full({x.size(0)}, sig, x.options()), false, ctx.nfe)) / sig;
      resid_grad = o_.lambda * sig * (eps_hat - eps);
    }
    {
      // grad of ||y - A(mu)||^2 / 2 by a vector-Jacobian product through A.
      at::AutoGradMode grad_mode(true);
      auto leaf = s.mu.detach().requires_grad_(true);
      const auto r = problem.op().forward(leaf) - problem.y();
      data_grad = torch::autograd::grad({0.5 * r.pow(2).sum()}, {leaf})[0].detach();
    }
    at::Tensor g;
    if (o_.convention == Options::Convention::Paper) {
      const double sy = problem.noise().sigma_y;
      g = data_grad / (sy * sy) + resid_grad;
    } else {
      const double n = static_cast<double>(numel(problem.prior().data_shape()));
      const double m = static_cast<double>(numel(problem.op().output_shape()));
      g = o_.obs_weight * data_grad / m + resid_grad / n;
    }
    if (o_.optimizer == Options::Optimizer::Sgd) {
      s.mu = s.mu - o_.lr * g;
    } else {
      // Adam (Kingma and Ba), betas (0.9, 0.99) and eps 1e-8 as torch.optim.Adam in the authors' code.
      constexpr double b1 = 0.9, b2 = 0.99, tiny = 1e-8;
      const double k = static_cast<double>(ctx.t + 1);
      s.m1 = b1 * s.m1 + (1 - b1) * g;
      s.m2 = b2 * s.m2 + (1 - b2) * g * g;
      const auto mhat = s.m1 / (1 - std::pow(b1, k)), vhat = s.m2 / (1 - std::pow(b2, k));
      s.mu = s.mu - o_.lr * mhat / (vhat.sqrt() + tiny);
    }
    Step<State> out;
    at::NoGradGuard no_grad;
    out.info.add("residual_norm", (problem.op().forward(s.mu) - problem.y()).flatten(1).norm(2, 1));
    out.state = std::move(s);
    return out;
  }
  at::Tensor sample(const State& s) const { return s.mu; }
  at::Tensor ok(const State& s, const StepContext&) const {
    return diffusion_ok(s.mu, 0.0, s.sigma_data, o_.divergence_threshold);
  }
  std::string divergence(const StepContext& ctx) const {
    return diffusion_divergence(o_.divergence_threshold, 0.0) + " at step " + std::to_string(ctx.t + 1) +
           "; lr=" + format_value(o_.lr) + ", lambda=" + format_value(o_.lambda);
  }

 private:
  Options o_;
};

SamplerRegistrar reg_reddiff(kernel_entry<Reddiff>(
    "reddiff",
    "RED-diff (Mardani et al. 2024): fits the mean of a variational posterior by one Adam (or gradient) step per "
    "noise level on the data misfit plus the denoiser's score-matching residual (any differentiable A, Gaussian "
    "noise); one forward evaluation per step and run. Budget B per measurement: steps = floor(B / K)"));

}  // namespace
}  // namespace psbench
