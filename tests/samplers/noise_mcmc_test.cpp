// MALA and pCN in noise space: exactness on a Gaussian prior with a linear generator (where the
// noise-space target is exactly Gaussian and the posterior is known in closed form), step-size adaptation,
// NFE accounting, batching invariance and stuck chains.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>

#include "core/rng.h"
#include "operators/lowrank.h"
#include "samplers/sampler.h"
#include "test_util.h"

using namespace psbench;
using namespace psbench::testing;

namespace {

// x = Phi(z) = m + L z with z ~ N(0, I): the Gaussian prior N(m, L L^T) seen through a linear generator.
class LinearGaussianPrior : public Prior, public Generator {
 public:
  LinearGaussianPrior(at::Tensor m, at::Tensor l) : m_(std::move(m)), l_(std::move(l)) {}
  std::string name() const override { return "linear_gaussian_test"; }
  Shape data_shape() const override { return {m_.size(0)}; }
  at::ScalarType dtype() const override { return at::kDouble; }
  const Generator* generator() const override { return this; }
  Shape latent_shape() const override { return {l_.size(1)}; }
  at::Tensor generate(const at::Tensor& z) const override { return m_ + z.matmul(l_.t()); }
  int64_t evaluations_per_call() const override { return 3; }  // any value: NFE accounting is checked against it
  const at::Tensor& m() const { return m_; }
  const at::Tensor& l() const { return l_; }

 private:
  at::Tensor m_, l_;
};

// A 3-D Gaussian prior, a rank-2 measurement: the posterior is anisotropic (informed and uninformed directions).
struct GaussianProblem {
  LinearGaussianPrior prior{at::tensor({1.0, -2.0, 0.5}, kF64),
                            at::tensor({1.5, 0.0, 0.0, 0.6, 1.0, 0.0, -0.4, 0.3, 0.8}, kF64).reshape({3, 3})};
  at::Generator gen = make_generator(21);
  LowRankOperator op{3, 2, gen};
  GaussianNoise noise{0.3};
  at::Tensor y, post_mean, post_cov;
  GaussianProblem() {
    auto x = prior.m() + at::randn({1, 3}, gen, kF64).matmul(prior.l().t());
    y = noise.sample(op.forward(x), gen);
    auto a = op.matrix().to(at::kDouble);
    auto p0 = at::linalg_inv(prior.l().matmul(prior.l().t()));
    auto prec = p0 + a.t().matmul(a) / (noise.sigma_y * noise.sigma_y);
    post_cov = at::linalg_inv(prec);
    post_mean = post_cov.matmul(p0.matmul(prior.m()) + a.t().matmul(y.reshape({2})) / (noise.sigma_y * noise.sigma_y));
  }
  Problem problem() const { return Problem(prior, op, noise, y); }
};

// Largest |z-score| of the sample mean and of the sample variance of each coordinate against the exact
// posterior, for n independent draws (standard errors sqrt(v/n) and v sqrt(2/(n-1))).
std::pair<double, double> moment_z_scores(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& cov) {
  const double n = static_cast<double>(x.size(0));
  auto v = at::diagonal(cov);
  auto zm = ((x.mean(0) - mean) / (v / n).sqrt()).abs().max().item<double>();
  auto zv = ((x.var(0) - v) / (v * std::sqrt(2.0 / (n - 1)))).abs().max().item<double>();
  return {zm, zv};
}
}  // namespace

TEST_CASE("Noise-space MALA matches the exact Gaussian posterior of a linear generator and ULA at the same step does not",
          "[noise_mala][statistical]") {
  GaussianProblem gp;
  Problem problem = gp.problem();
  // 1000 independent chains, the last state of each: i.i.d. draws up to the (negligible) burn-in error,
  // so the z-scores are standard normal for an exact sampler. 6 z-scores each: |z| < 4.5.
  const int64_t chains = 1000;
  // step_size 0.25: acceptance ~0.65, and ULA at this step is visibly biased.
  std::map<std::string, OptionValue> o{
      {"chains", chains}, {"warm_start_steps", int64_t{0}}, {"step_size", 0.25}, {"burn_in", int64_t{200}}};
  auto out = make_sampler("noise_mala", o)->run(problem, chains, chain_seeds(chains, 3));
  REQUIRE(out.samples.size(0) == chains);
  auto [zm, zv] = moment_z_scores(out.samples, gp.post_mean, gp.post_cov);
  const auto& acc = out.trace.at("acceptance");
  const double mean_acc = std::accumulate(acc.begin(), acc.end(), 0.0) / static_cast<double>(acc.size());
  INFO("MALA: mean z " << zm << ", variance z " << zv << ", acceptance " << mean_acc);
  CHECK(zm < 4.5);
  CHECK(zv < 4.5);
  CHECK(mean_acc > 0.2);
  CHECK(mean_acc < 0.95);  // the correction is active: the test would not see a broken accept step otherwise

  // Unadjusted Langevin with the same step and chain length: its O(h) bias is detected by the same test.
  auto ula = make_sampler("noise_langevin", o)->run(problem, chains, chain_seeds(chains, 3));
  auto [uzm, uzv] = moment_z_scores(ula.samples, gp.post_mean, gp.post_cov);
  INFO("ULA: mean z " << uzm << ", variance z " << uzv);
  CHECK(std::max(uzm, uzv) > 4.5);
}

TEST_CASE("Noise-space pCN matches the exact Gaussian posterior of a linear generator", "[noise_pcn][statistical]") {
  GaussianProblem gp;
  Problem problem = gp.problem();
  const int64_t chains = 1000;
  auto out = make_sampler("noise_pcn", {{"chains", chains}, {"warm_start_steps", int64_t{0}}, {"beta", 0.4},
                                        {"burn_in", int64_t{300}}})
                 ->run(problem, chains, chain_seeds(chains, 4));
  REQUIRE(out.samples.size(0) == chains);
  auto [zm, zv] = moment_z_scores(out.samples, gp.post_mean, gp.post_cov);
  const auto& acc = out.trace.at("acceptance");
  const double mean_acc = std::accumulate(acc.begin(), acc.end(), 0.0) / static_cast<double>(acc.size());
  INFO("pCN: mean z " << zm << ", variance z " << zv << ", acceptance " << mean_acc);
  CHECK(zm < 4.5);
  CHECK(zv < 4.5);
  CHECK(mean_acc > 0.05);
  CHECK(mean_acc < 0.95);
}

TEST_CASE("Dual averaging brings the MALA acceptance rate to its target during burn-in", "[noise_mala]") {
  GaussianProblem gp;
  Problem problem = gp.problem();
  // step_size 20: far too large, acceptance near 0 before adaptation.
  const int64_t chains = 40, burn_in = 150, per_chain = 100;
  auto out = make_sampler("noise_mala", {{"chains", chains},
                                         {"warm_start_steps", int64_t{0}},
                                         {"step_size", 20.0},
                                         {"burn_in", burn_in},
                                         {"adapt_steps", burn_in},
                                         {"target_acceptance", 0.574}})
                 ->run(problem, chains * per_chain, chain_seeds(chains, 8));
  const auto& acc = out.trace.at("acceptance");
  const auto& h = out.trace.at("step_size");
  REQUIRE(acc.size() == static_cast<size_t>(burn_in + per_chain));
  REQUIRE(h.size() == acc.size());
  const double early = std::accumulate(acc.begin(), acc.begin() + 5, 0.0) / 5.0;
  const double late = std::accumulate(acc.begin() + burn_in, acc.end(), 0.0) / static_cast<double>(per_chain);
  INFO("acceptance first 5 steps " << early << ", after adaptation " << late << ", final step " << h.back());
  CHECK(early < 0.2);
  CHECK(std::abs(late - 0.574) < 0.1);  // 4000 acceptance probabilities: its Monte-Carlo error is ~0.01
  CHECK(h.back() < 0.5);
  // The step is frozen after adaptation.
  CHECK(h[burn_in] == Approx(h.back()).epsilon(1e-12));
  CHECK(out.diverged == std::vector<uint8_t>(chains, 0));
}

TEST_CASE("NFE accounting of noise-space MALA and pCN is exact and warm-up is reported apart", "[noise_mala][noise_pcn]") {
  GaussianProblem gp;
  Problem problem = gp.problem();
  const int64_t evals = gp.prior.evaluations_per_call();
  std::map<std::string, OptionValue> m{{"chains", int64_t{3}}, {"warm_start_steps", int64_t{7}}, {"burn_in", int64_t{4}},
                                       {"thinning", int64_t{2}}, {"step_size", 0.01}};
  const int64_t per_chain = 5, steps = 4 + per_chain * 2;
  auto mala = make_sampler("noise_mala", m);
  auto out = mala->run(problem, 3 * per_chain, chain_seeds(3, 1));
  CHECK(out.warmup_nfe.forward_backward == 3 * 7 * evals);
  CHECK(out.warmup_nfe.forward == 0);
  CHECK(out.sampling_nfe.forward_backward == 3 * (1 + steps) * evals);  // start + one per proposal
  CHECK(out.sampling_nfe.forward == 0);
  CHECK(mala->planned_nfe(3 * per_chain, gp.prior) == out.warmup_nfe.total() + out.sampling_nfe.total());
  CHECK(out.samples.size(0) == 3 * per_chain);
  CHECK(out.trace.at("acceptance").size() == static_cast<size_t>(steps));

  m.erase("step_size");
  auto pcn = make_sampler("noise_pcn", m);
  auto pout = pcn->run(problem, 3 * per_chain, chain_seeds(3, 1));
  CHECK(pout.warmup_nfe.forward_backward == 3 * 7 * evals);
  CHECK(pout.sampling_nfe.forward == 3 * (1 + steps) * evals);  // forward passes only
  CHECK(pout.sampling_nfe.forward_backward == 0);
  CHECK(pcn->planned_nfe(3 * per_chain, gp.prior) == pout.warmup_nfe.total() + pout.sampling_nfe.total());
  CHECK(pout.samples.size(0) == 3 * per_chain);
}

TEST_CASE("MALA and pCN chains run one at a time or batched give the same samples", "[noise_mala][noise_pcn]") {
  GaussianProblem gp;
  Problem problem = gp.problem();
  std::map<std::string, OptionValue> m{{"chains", int64_t{5}}, {"warm_start_steps", int64_t{3}}, {"step_size", 0.05},
                                       {"burn_in", int64_t{6}}, {"adapt_steps", int64_t{6}}};
  auto s = chain_seeds(5, 77);
  auto all = make_sampler("noise_mala", m)->run(problem, 10, s);
  m["batch_size"] = int64_t{2};
  auto split = make_sampler("noise_mala", m)->run(problem, 10, s);
  CHECK(at::allclose(all.samples, split.samples, 1e-9, 1e-9));
  std::map<std::string, OptionValue> p{
      {"chains", int64_t{5}}, {"warm_start_steps", int64_t{3}}, {"burn_in", int64_t{6}}, {"adapt_steps", int64_t{6}}};
  auto pall = make_sampler("noise_pcn", p)->run(problem, 10, s);
  p["batch_size"] = int64_t{1};
  auto psplit = make_sampler("noise_pcn", p)->run(problem, 10, s);
  CHECK(at::allclose(pall.samples, psplit.samples, 1e-9, 1e-9));
  // Not vacuous: the chains moved and differ from each other.
  CHECK_FALSE(at::allclose(all.samples[0], all.samples[2], 1e-6, 1e-6));
}

TEST_CASE("A MALA step size so large that no proposal is accepted marks the chains diverged", "[noise_mala]") {
  GaussianProblem gp;
  Problem problem = gp.problem();
  std::map<std::string, OptionValue> m{{"chains", int64_t{4}}, {"warm_start_steps", int64_t{0}}, {"step_size", 1e4}};
  auto mala = make_sampler("noise_mala", m);
  auto out = mala->run(problem, 4 * 20, chain_seeds(4, 5));
  CHECK(out.diverged == std::vector<uint8_t>(4, 1));
  CHECK(out.samples.size(0) == 0);
  CHECK(out.divergence_message.find("accepted none") != std::string::npos);
  CHECK(out.divergence_message.find("step_size=10000") != std::string::npos);
  CHECK(mala->num_chains(8) == 4);
  CHECK_THROWS_AS(mala->num_chains(6), ConfigError);  // 6 samples do not split over 4 chains
  m["adapt_steps"] = int64_t{5};  // adaptation beyond burn-in is a configuration error, found when building
  CHECK_THROWS_AS(make_sampler("noise_mala", m), ConfigError);
}
