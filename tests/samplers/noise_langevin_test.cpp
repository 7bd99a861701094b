// Noise-space Langevin validated against the exact posterior of a Gaussian mixture.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/rng.h"
#include "metrics/metric.h"
#include "operators/lowrank.h"
#include "priors/gmm.h"
#include "samplers/sampler.h"
#include "test_util.h"

using namespace psbench;
using namespace psbench::testing;

namespace {

// A 2-D problem whose posterior has several components of comparable weight: 9 components on a
// 3x3 grid (spacing 4, unit variance), one noisy linear measurement (sigma_y = 0.5).
struct TwoDProblem {
  GaussianMixture gmm;
  at::Generator gen = make_generator(11);
  LowRankOperator op;
  GaussianNoise noise{0.5};
  at::Tensor y;
  TwoDProblem()
      : gmm([] {
          GmmParams p;
          p.dim = 2; p.grid = 3; p.spacing = 4.0; p.ode_steps = 24;
          return p;
        }(), 7),
        op(2, 1, gen) {
    auto x = gmm.sample(1, gen);
    y = noise.sample(op.forward(x), gen);
  }
};

// A d-dimensional 25-component mixture (seed 3) with a rank-d_y measurement of x* ~ prior.
struct SmallProblem {
  GaussianMixture gmm;
  at::Generator gen = make_generator(4);
  LowRankOperator op;
  GaussianNoise noise;
  at::Tensor y;
  SmallProblem(int64_t dim, int64_t ode_steps, int64_t d_y, double sigma_y)
      : gmm([&] {
          GmmParams p;
          p.dim = dim;
          p.ode_steps = ode_steps;
          return p;
        }(), 3),
        op(dim, d_y, gen), noise{sigma_y} {
    y = noise.sample(op.forward(gmm.sample(1, gen)), gen);
  }
  Problem problem() const { return Problem(gmm, op, noise, y); }
};

double sliced_w(const at::Tensor& a, const at::Tensor& b, uint64_t seed) {
  auto g = make_generator(seed);
  return sliced_wasserstein(a, b, 500, g);
}
}  // namespace

TEST_CASE("Noise-space Langevin reaches the exact posterior of a 2-D mixture and without the likelihood it does not",
          "[noise_langevin][statistical][slow]") {
  TwoDProblem tp;
  auto post = tp.gmm.exact_posterior(tp.op, tp.noise.sigma_y, tp.y);
  auto w = post->component_weights();
  // The test is only meaningful if the posterior is genuinely multimodal.
  REQUIRE((w > 0.05).sum().item<int64_t>() >= 3);
  auto ref_gen = make_generator(99);
  auto ref = post->sample(4000, ref_gen);

  const int64_t chains = 400, per_chain = 5, n = chains * per_chain;
  // warm_start_steps 0: start from the prior, the chain alone must transport the mass.
  std::map<std::string, OptionValue> o{{"chains", chains},         {"warm_start_steps", int64_t{0}},
                                       {"step_size", 0.003},       {"burn_in", int64_t{300}},
                                       {"thinning", int64_t{20}}};
  auto sampler = make_sampler("noise_langevin", o);

  // Bound, derived from the Monte-Carlo floor: the SW distance between n' *independent* exact draws
  // and the reference, with n' = n / 4 (we allow the thinned chains an effective sample size of only
  // a quarter of their count), estimated over 16 replicates: mean + 3 standard deviations. The ULA
  // bias at tau = 3e-3 is far below this (at tau = 1e-2 the distance roughly doubles).
  std::vector<double> floor;
  for (int r = 0; r < 16; ++r) {
    auto g = make_generator(1000 + r);
    floor.push_back(sliced_w(post->sample(n / 4, g), ref, 500 + r));
  }
  auto ft = at::tensor(floor, kF64);
  const double bound = ft.mean().item<double>() + 3 * ft.std().item<double>();

  Problem problem(tp.gmm, tp.op, tp.noise, tp.y);
  auto out = sampler->run(problem, n, chain_seeds(chains, 5));
  REQUIRE(out.samples.size(0) == n);
  const double sw = sliced_w(out.samples, ref, 7);
  INFO("SW " << sw << " bound " << bound << " (floor mean " << ft.mean().item<double>() << ")");
  CHECK(sw < bound);
  // Component weights agree with the exact posterior (total variation).
  auto frac = at::bincount(post->assign_components(out.samples), {}, w.size(0)).to(at::kDouble) / n;
  CHECK(0.5 * (frac - w).abs().sum().item<double>() < 0.1);

  // A wrong target (prior drift four times too strong) is detected by the same bound.
  auto wrong = o;
  wrong["prior_scale"] = 4.0;
  auto out_wrong = make_sampler("noise_langevin", wrong)->run(problem, n, chain_seeds(chains, 5));
  const double sw_wrong = sliced_w(out_wrong.samples, ref, 7);
  INFO("SW with prior_scale 4 " << sw_wrong);
  CHECK(sw_wrong > bound);

  // Likelihood switched off (sigma_y -> huge): the chain samples the prior instead and must fail.
  GaussianNoise off{1e6};
  Problem prior_only(tp.gmm, tp.op, off, tp.y);
  auto out_off = sampler->run(prior_only, n, chain_seeds(chains, 5));
  const double sw_off = sliced_w(out_off.samples, ref, 7);
  INFO("SW without likelihood " << sw_off);
  CHECK(sw_off > 3 * bound);
}

TEST_CASE("Chains run one at a time or as one batch give the same samples", "[noise_langevin]") {
  SmallProblem sp(8, 6, 2, 0.3);
  Problem problem = sp.problem();
  std::map<std::string, OptionValue> o{{"chains", int64_t{6}},    {"warm_start_steps", int64_t{10}},
                                       {"warm_start_lr", 0.05},    {"step_size", 1e-3},
                                       {"burn_in", int64_t{3}},    {"thinning", int64_t{2}}};
  auto s = chain_seeds(6, 42);
  o["batch_size"] = int64_t{0};
  auto all = make_sampler("noise_langevin", o)->run(problem, 12, s);
  o["batch_size"] = int64_t{1};
  auto single = make_sampler("noise_langevin", o)->run(problem, 12, s);
  o["batch_size"] = int64_t{4};
  auto mixed = make_sampler("noise_langevin", o)->run(problem, 12, s);
  REQUIRE(all.samples.sizes() == single.samples.sizes());
  // Identical up to floating-point reassociation inside batched BLAS calls.
  CHECK(at::allclose(all.samples, single.samples, 1e-9, 1e-9));
  CHECK(at::allclose(all.samples, mixed.samples, 1e-9, 1e-9));
  CHECK(all.warmup_nfe.forward_backward == single.warmup_nfe.forward_backward);
  // A different seed gives different samples (the comparison above is not vacuous).
  auto other = make_sampler("noise_langevin", o)->run(problem, 12, chain_seeds(6, 43));
  CHECK_FALSE(at::allclose(all.samples, other.samples, 1e-3, 1e-3));
}

TEST_CASE("NFE accounting of noise-space Langevin is exact and warm-up is reported apart", "[noise_langevin]") {
  SmallProblem sp(4, 5, 1, 0.5);
  Problem problem = sp.problem();
  auto sampler = make_sampler("noise_langevin", {{"chains", int64_t{3}},
                                                 {"warm_start_steps", int64_t{7}},
                                                 {"burn_in", int64_t{4}},
                                                 {"thinning", int64_t{3}},
                                                 {"step_size", 1e-3}});
  const int64_t per_chain = 5;
  auto out = sampler->run(problem, 3 * per_chain, chain_seeds(3, 1));
  const int64_t evals = sp.gmm.generator()->evaluations_per_call();  // 2 * 5 - 1
  REQUIRE(evals == 9);
  CHECK(out.warmup_nfe.forward_backward == 3 * 7 * evals);
  CHECK(out.warmup_nfe.forward == 0);
  // burn_in + per_chain * thinning gradient steps; the last iterate's image needs one forward pass.
  CHECK(out.sampling_nfe.forward_backward == 3 * (4 + per_chain * 3) * evals);
  CHECK(out.sampling_nfe.forward == 3 * evals);
  CHECK(sampler->planned_nfe(3 * per_chain, sp.gmm) ==
        out.warmup_nfe.total() + out.sampling_nfe.total());
  CHECK(out.samples.size(0) == 3 * per_chain);
  CHECK(out.trace.at("warmup_loss").size() == 7);
  CHECK(out.trace.at("chain_loss").size() == static_cast<size_t>(4 + per_chain * 3));
  // The warm start lowers the data misfit.
  CHECK(out.trace.at("warmup_loss").back() < out.trace.at("warmup_loss").front());
}

TEST_CASE("A diverging step size marks chains diverged and never returns non-finite samples", "[noise_langevin]") {
  SmallProblem sp(4, 4, 2, 0.01);
  Problem problem = sp.problem();
  // tau * L >> 2 for the likelihood curvature 1/sigma_y^2.
  std::map<std::string, OptionValue> o{{"chains", int64_t{4}}, {"warm_start_steps", int64_t{0}}, {"step_size", 10.0}};
  auto out = make_sampler("noise_langevin", o)->run(problem, 4 * 50, chain_seeds(4, 9));
  int64_t diverged = 0;
  for (auto d : out.diverged) diverged += d;
  CHECK(diverged == 4);
  CHECK(out.samples.size(0) == 0);
  CHECK_FALSE(out.divergence_message.empty());
  CHECK(out.divergence_message.find("step_size=10") != std::string::npos);
  // The trace of chains diverged by each step is the same however the chains are batched (a batch whose
  // chains all died used to stop adding to the later steps).
  const auto& by_step = out.trace.at("diverged_chains");
  CHECK(by_step.size() == 50);  // burn_in 0, thinning 1: 50 samples per chain, one step each
  CHECK(by_step.back() == 4);
  for (int64_t batch : {1, 3}) {
    o["batch_size"] = batch;
    INFO("batch_size " << batch);
    CHECK(make_sampler("noise_langevin", o)->run(problem, 4 * 50, chain_seeds(4, 9)).trace.at("diverged_chains") ==
          by_step);
  }
  o.erase("batch_size");
  // A small step on the same problem does not diverge.
  o["step_size"] = 1e-6;
  auto ok = make_sampler("noise_langevin", o)->run(problem, 4 * 5, chain_seeds(4, 9));
  CHECK(ok.samples.size(0) == 20);
  CHECK(at::isfinite(ok.samples).all().item<bool>());
}
