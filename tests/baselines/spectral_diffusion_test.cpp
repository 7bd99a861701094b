// PiGDM, DDRM, DDNM(+) and DiffPIR (baselines/pigdm.cpp, ddrm.cpp, ddnm.cpp, diffpir.cpp) on a Gaussian prior of unit variance
// and a random rank-2 map of R^4. With the exact denoiser D(x, sigma) = k x + (1 - k) mu, k = 1 / (1 + sigma^2),
// every step of these samplers is affine in x, coordinate by coordinate in the operator's SVD, so the law of
// their output is Gaussian with a mean and variance that a scalar recursion gives exactly. None of them is a
// posterior sampler but PiGDM, whose likelihood approximation is exact here (so its law is the posterior up to
// the ancestral kernel's discretisation); each test pins the sampler to its law (within Monte Carlo error) and,
// on coordinates the measurement does not see, checks the law against the posterior there (the prior).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>

#include "core/rng.h"
#include "nn/karras.h"
#include "operators/lowrank.h"
#include "operators/svd.h"
#include "priors/gmm.h"
#include "samplers/sampler.h"
#include "test_util.h"

using namespace psbench;
using namespace psbench::testing;

namespace {

struct Coord {
  bool observed;
  double ybar, sigma;  // y_bar = (U^T y)_i / s_i and its noise level sigma_y / s_i (observed coordinates)
  double s, mu;        // singular value (0 off the range), prior mean of the coordinate
};

// x' = alpha x + beta + sqrt(q) xi, given sigma, sigma', k and the coordinate.
struct Affine {
  double alpha, beta, q;
};
using StepLaw = std::function<Affine(const Coord&, double sig, double nxt, double k)>;

struct Law {
  double mean, var;
};

Law law_of(const Coord& c, const std::vector<double>& sig, Law start, const StepLaw& step) {
  Law l = start;
  for (size_t i = 0; i + 1 < sig.size(); ++i) {
    const auto a = step(c, sig[i], sig[i + 1], 1 / (1 + sig[i] * sig[i]));
    l = {a.alpha * l.mean + a.beta, a.alpha * a.alpha * l.var + a.q};
  }
  return l;
}

struct LawCheck {
  int64_t evaluations = 0;      // per sample
  bool gradient = false;        // forward+backward evaluations (else forward only)
  bool near_posterior = false;  // the law is the posterior up to discretisation: mean within 0.1 sd, variance 20%
  bool centred = true;          // off the range the law is centred on the prior
};

// Runs the sampler K times on the fixture and compares every spectral coordinate with law(coordinate, denoiser);
// with singular_floor the coordinates are those of the truncated SVD (its dropped direction unobserved).
void check_law(const std::string& name, const std::map<std::string, OptionValue>& opts,
               const std::function<Law(const Coord&, const Denoiser&)>& law_fn, LawCheck what,
               double singular_floor = 0) {
  auto gen = make_generator(23);
  const auto mu0 = at::tensor({1.0, -1.0, 0.5, 2.0}, at::TensorOptions().dtype(at::kDouble));
  GaussianMixture prior(mu0.view({1, 4}), at::ones({1}, at::TensorOptions().dtype(at::kDouble)), 1.0);
  LowRankOperator op(4, 2, gen);
  GaussianNoise noise{0.3};
  auto y = noise.sample(op.forward(prior.sample(1, gen)), gen);
  Problem problem(prior, op, noise, y);
  const int64_t k = 2000;
  auto out = make_sampler(name, opts)->run(problem, k, chain_seeds(k, 5));
  REQUIRE(out.samples.size(0) == k);
  CHECK(out.sampling_nfe.forward == (what.gradient ? 0 : k * what.evaluations));
  CHECK(out.sampling_nfe.forward_backward == (what.gradient ? k * what.evaluations : 0));
  const auto svd = singular_floor > 0 ? op.svd()->truncated(singular_floor) : op.svd();
  const auto coords = svd->vt(out.samples.to(at::kDouble));
  const auto mean = coords.mean(0), var = coords.var(0);
  const auto uty = svd->ut(y.to(at::kDouble))[0], mubar = svd->vt(mu0.view({1, 4}))[0];
  const auto& den = problem.denoiser(name);
  for (int64_t i = 0; i < 4; ++i) {
    Coord c{i < svd->rank(), 0, 0, 0, mubar[i].item<double>()};
    if (c.observed) {
      c.s = svd->singular_values()[i].item<double>();
      c.ybar = uty[i].item<double>() / c.s;
      c.sigma = noise.sigma_y / c.s;
    }
    const auto law = law_fn(c, den);
    const double post_var = 1 / (1 + c.s * c.s / (noise.sigma_y * noise.sigma_y));
    const double post_mean = c.observed ? post_var * (c.mu + c.s * c.s * c.ybar / (noise.sigma_y * noise.sigma_y)) : c.mu;
    const double m = mean[i].item<double>(), v = var[i].item<double>();
    INFO(name << " coordinate " << i << " (s " << c.s << "): sampler mean " << m << " var " << v << "; its law "
              << law.mean << ", " << law.var << "; posterior " << post_mean << ", " << post_var);
    CHECK(std::abs(m - law.mean) <= 4 * std::sqrt(law.var / k) + 1e-9);
    CHECK(std::abs(v - law.var) <= 4 * law.var * std::sqrt(2.0 / k) + 1e-9);
    // Off the range the measurement says nothing: the law is centred on the prior there.
    if (!c.observed && what.centred) CHECK(std::abs(law.mean - c.mu) < 0.05);
    if (what.near_posterior) {
      CHECK(std::abs(law.mean - post_mean) < 0.1 * std::sqrt(post_var));
      CHECK(std::abs(law.var / post_var - 1) < 0.2);
    }
  }
}

// The reverse diffusions: `steps` affine steps down the Karras grid from start(c, sigma_max).
void check_against_law(const std::string& name, const std::map<std::string, OptionValue>& opts, int64_t steps,
                       const std::function<Law(const Coord&, double sigma_T)>& start, const StepLaw& step,
                       bool gradient = false, bool near_posterior = false, double singular_floor = 0) {
  auto law = [&](const Coord& c, const Denoiser& den) {
    const auto sig = karras_sigmas(steps, den.sigma_min(), den.sigma_max());
    return law_of(c, sig, start(c, sig[0]), step);
  };
  check_law(name, opts, law, {steps, gradient, near_posterior, true}, singular_floor);
}

Law from_noise(const Coord&, double st) { return {0, st * st}; }

}  // namespace

namespace {

// DDRM's start p(x_T | y) and step law (eta, eta_b).
Law ddrm_start(const Coord& c, double st) {
  if (c.observed && c.sigma <= st) return {c.ybar, st * st - c.sigma * c.sigma};
  return {0, st * st};
}

StepLaw ddrm_step(double eta, double eta_b) {
  return [=](const Coord& c, double sig, double nxt, double k) -> Affine {
    const double keep = std::sqrt(1 - eta * eta);
    if (!c.observed) {
      const double e = keep * nxt / sig;
      return {k * (1 - e) + e, (1 - k) * c.mu * (1 - e), eta * eta * nxt * nxt};
    }
    if (nxt < c.sigma) {
      const double d = keep * nxt / c.sigma;
      return {k * (1 - d), (1 - k) * c.mu * (1 - d) + d * c.ybar, eta * eta * nxt * nxt};
    }
    return {(1 - eta_b) * k, (1 - eta_b) * (1 - k) * c.mu + eta_b * c.ybar, nxt * nxt - eta_b * eta_b * c.sigma * c.sigma};
  };
}

}  // namespace

TEST_CASE("DDRM follows its closed-form law on a Gaussian prior", "[baselines][statistical]") {
  check_against_law("ddrm", {}, 20, ddrm_start, ddrm_step(0.85, 1.0));
}

TEST_CASE("DDRM with eta_b below 1 follows its closed-form law", "[baselines][statistical]") {
  check_against_law("ddrm", {{"eta", 0.5}, {"eta_b", 0.6}, {"steps", int64_t{30}}}, 30, ddrm_start, ddrm_step(0.5, 0.6));
}

namespace {

// DDNM's step law: convention code (eta form, c = 1) or paper (DDPM posterior, c = 1 - a); plus scales lambda.
StepLaw ddnm_step(bool paper, bool plus, double eta) {
  return [=](const Coord& c, double sig, double nxt, double k) -> Affine {
    const double a = nxt * nxt / (sig * sig);
    const double tau = paper ? nxt * std::sqrt(1 - a) : eta * nxt, cc = paper ? 1 - a : 1.0;
    double lambda = c.observed ? 1.0 : 0.0, q = tau * tau;
    if (c.observed && plus) {
      lambda = cc * c.sigma <= tau ? 1.0 : tau / (cc * c.sigma);
      q = std::max(0.0, tau * tau - std::pow(lambda * cc * c.sigma, 2));
    }
    // x0_c = (1 - lambda)(k x + (1 - k) mu) + lambda y_bar
    const double x0c_alpha = (1 - lambda) * k, x0c_beta = (1 - lambda) * (1 - k) * c.mu + lambda * c.ybar;
    if (paper) return {a + cc * x0c_alpha, cc * x0c_beta, q};
    const double e = std::sqrt(1 - eta * eta) * nxt / sig;  // times (x - x0_hat) = (1 - k)(x - mu)
    return {x0c_alpha + e * (1 - k), x0c_beta - e * (1 - k) * c.mu, q};
  };
}

}  // namespace

TEST_CASE("DDNM+ follows its closed-form law on a Gaussian prior", "[baselines][statistical]") {
  check_against_law("ddnm_plus", {}, 100, from_noise, ddnm_step(false, true, 0.85));
}

TEST_CASE("DDNM+ in the paper convention follows its closed-form law", "[baselines][statistical]") {
  check_against_law("ddnm_plus", {{"convention", std::string("paper")}, {"steps", int64_t{40}}}, 40, from_noise,
                    ddnm_step(true, true, 0.85));
}

// singular_floor 0.999 keeps the larger of the fixture's two singular values only: the other direction is then
// unobserved, and the samplers' law there is the unobserved one (centred on the prior).
TEST_CASE("DDRM and DDNM+ with a singular floor treat the dropped direction as unobserved", "[baselines][statistical]") {
  check_against_law("ddrm", {{"singular_floor", 0.999}}, 20, ddrm_start, ddrm_step(0.85, 1.0), false, false, 0.999);
  check_against_law("ddnm_plus", {{"singular_floor", 0.999}}, 100, from_noise, ddnm_step(false, true, 0.85), false, false,
                    0.999);
}

TEST_CASE("DDNM follows its closed-form law on a Gaussian prior", "[baselines][statistical]") {
  check_against_law("ddnm", {{"eta", 0.5}, {"steps", int64_t{30}}}, 30, from_noise, ddnm_step(false, false, 0.5));
}

TEST_CASE("DiffPIR follows its closed-form law on a Gaussian prior", "[baselines][statistical]") {
  const double lambda = 2.0, zeta = 0.3, sigma_y = 0.3;
  auto step = [&](const Coord& c, double sig, double nxt, double k) -> Affine {
    const double rho = lambda * sigma_y * sigma_y / (sig * sig);
    const double w = c.observed ? c.s * c.s / (c.s * c.s + rho) : 0.0, e = nxt * std::sqrt(1 - zeta) / sig;
    return {(1 - e) * (1 - w) * k + e, (1 - e) * ((1 - w) * (1 - k) * c.mu + w * c.ybar), nxt * nxt * zeta};
  };
  check_against_law("diffpir", {{"lambda", lambda}, {"zeta", zeta}, {"steps", int64_t{50}}}, 50, from_noise, step);
}

TEST_CASE("PiGDM follows its closed-form law on a Gaussian prior near the exact posterior", "[baselines][statistical]") {
  // Ancestral step plus (sigma^2 - sigma'^2) g, g = k s (y - s x0_hat) / (r^2 s^2 + sigma_y^2), r^2 = sigma^2 k,
  // y = s y_bar: affine in x through x0_hat = k x + (1 - k) mu.
  const double sigma_y = 0.3;
  auto step = [&](const Coord& c, double sig, double nxt, double k) -> Affine {
    const double s2 = sig * sig, n2 = nxt * nxt, a = n2 / s2, q = s2 * k * c.s * c.s + sigma_y * sigma_y;
    const double y = c.s * c.ybar;
    return {a + (1 - a) * k - (s2 - n2) * k * k * c.s * c.s / q,
            (1 - a) * (1 - k) * c.mu + (s2 - n2) * k * c.s * (y - c.s * (1 - k) * c.mu) / q, n2 * (1 - a)};
  };
  check_against_law("pigdm", {{"steps", int64_t{100}}}, 100, from_noise, step, true, true);
}

namespace {

// PnP-DM on the same fixture: x_0 ~ N(0, 1); each iteration the exact Gaussian likelihood step
// z = a x + b + N(0, v) and the prior step's affine Euler steps over the grid levels below rho (ODE or SDE).
Law pnp_dm_law(const Coord& c, const Denoiser& den, double rho, int64_t iterations, int64_t num_steps, bool sde,
               int64_t* levels) {
  const double sigma_y = 0.3;
  double a = 1, b = 0, v = rho * rho;
  if (c.observed) {
    const double prec = c.s * c.s / (sigma_y * sigma_y) + 1 / (rho * rho);
    a = 1 / (rho * rho) / prec;
    b = c.s * c.s * c.ybar / (sigma_y * sigma_y) / prec;
    v = 1 / prec;
  }
  const auto grid = karras_sigmas(num_steps, den.sigma_min(), den.sigma_max());
  double p = 1, q = 0, r = 0;  // the prior step x' = p z + q + N(0, r)
  *levels = 0;
  for (size_t j = 0; j + 1 < grid.size(); ++j) {
    if (grid[j] >= rho) continue;
    ++*levels;
    const double sig = grid[j], nxt = grid[j + 1], k = 1 / (1 + sig * sig);
    const double e = (sde ? 2 : 1) * (nxt - sig) * (1 - k) / sig;  // x' = x + e (x - mu) + noise
    p *= 1 + e;
    q = (1 + e) * q - e * c.mu;
    r = (1 + e) * (1 + e) * r + (sde && nxt > 0 ? 2 * sig * (sig - nxt) : 0.0);
  }
  Law l{0, 1};
  for (int64_t i = 0; i < iterations; ++i) l = {p * (a * l.mean + b) + q, p * p * (a * a * l.var + v) + r};
  return l;
}

void check_pnp_dm(bool sde) {
  const double rho = 0.3;
  const int64_t burn_in = 10, num_steps = 60;
  int64_t levels = 0;
  auto law = [&](const Coord& c, const Denoiser& den) {
    return pnp_dm_law(c, den, rho, burn_in + 1, num_steps, sde, &levels);
  };
  {
    // The number of levels below rho, for the NFE count (any coordinate).
    GaussianMixture probe(at::zeros({1, 4}, at::kDouble), at::ones({1}, at::kDouble), 1.0);
    law(Coord{false, 0, 0, 0, 0}, *probe.denoiser());
  }
  check_law("pnp_dm",
            {{"chains", int64_t{2000}}, {"burn_in", burn_in}, {"thinning", int64_t{1}}, {"rho", rho},
             {"num_steps", num_steps}, {"mode", std::string(sde ? "sde" : "pfode")}},
            law, {(burn_in + 1) * levels, false, false, false});
}

}  // namespace

TEST_CASE("PnP-DM with the ODE prior step follows its closed-form law on a Gaussian prior", "[baselines][statistical]") {
  check_pnp_dm(false);
}

TEST_CASE("PnP-DM with the SDE prior step follows its closed-form law on a Gaussian prior", "[baselines][statistical]") {
  check_pnp_dm(true);
}

TEST_CASE("RED-diff with gradient descent follows its closed-form law on a Gaussian prior", "[baselines][statistical]") {
  // mu_0 = A^+ y; each step mu' = mu - lr g with g = s (s mu - y_u) / sigma_y^2 + lambda sigma (eps_hat - eps),
  // eps_hat - eps = (1 - k)(mu - m) / sigma - k eps at x = mu + sigma eps.
  const double lambda = 0.25, lr = 0.005, sigma_y = 0.3;
  const int64_t steps = 200;
  auto law = [&](const Coord& c, const Denoiser& den) {
    const auto sig = karras_sigmas(steps, den.sigma_min(), den.sigma_max());
    Law l{c.observed ? c.ybar : 0.0, 0.0};
    for (int64_t i = 0; i < steps; ++i) {
      const double k = 1 / (1 + sig[i] * sig[i]), p = c.s * c.s / (sigma_y * sigma_y);
      const double alpha = 1 - lr * (p + lambda * (1 - k));
      const double beta = lr * (p * c.ybar + lambda * (1 - k) * c.mu), noise = lr * lambda * sig[i] * k;
      l = {alpha * l.mean + beta, alpha * alpha * l.var + noise * noise};
    }
    return l;
  };
  check_law("reddiff", {{"optimizer", std::string("sgd")}, {"lr", lr}, {"lambda", lambda}, {"steps", steps}}, law,
            {steps, false, false, false});
}
