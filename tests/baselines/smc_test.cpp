// Sequential Monte Carlo samplers (baselines/mcgdiff.cpp, tds.cpp, fps.cpp) against exact posteriors. MCGdiff and
// TDS are exact as the particles grow, so their distance to the exact posterior must fall to the Monte-Carlo floor
// of exact draws, and the posterior's mode weights must come out right where DPS gets them wrong. FPS is not exact
// for noisy measurements (baselines/fps.cpp): on a Gaussian prior its limit in P is known in closed form, and it
// must reach that limit, which is not the posterior.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "baselines/noise_grid.h"
#include "core/rng.h"
#include "metrics/metric.h"
#include "nn/karras.h"
#include "operators/svd.h"
#include "operators/lowrank.h"
#include "priors/gmm.h"
#include "samplers/sampler.h"
#include "store/result_store.h"
#include "test_util.h"

using namespace psbench;
using namespace psbench::testing;

namespace {

double smc_sw(const at::Tensor& a, const at::Tensor& b) {
  auto g = make_generator(23);
  return sliced_wasserstein(a, b, 500, g);
}

// 25 components in d = 8, a rank-2 measurement with sigma_y = 0.3.
struct SmcGmm {
  GaussianMixture gmm{[] {
                        GmmParams p;
                        p.dim = 8;
                        return p;
                      }(),
                      3};
  at::Generator gen = make_generator(7);
  LowRankOperator op{8, 2, gen};
  GaussianNoise noise{0.3};
  at::Tensor y = noise.sample(op.forward(gmm.sample(1, gen)), gen);
  Problem problem() const { return Problem(gmm, op, noise, y); }
};

}  // namespace

namespace {

// Mean sliced-Wasserstein distance and mixture-weight error of `sampler` against the exact posterior of SmcGmm
// at 2, 16 and 256 particles, on four measurements (K = 100 independent runs each): both fall with P, and with
// `near_floor` the distance at P = 256 is within a bound of the exact draws' floor.
void check_reaches_exact(const std::string& sampler, bool near_floor, std::map<std::string, OptionValue> options = {}) {
  // Four measurements (the SMC's finite-P error differs a lot between them: where the potentials' hand-over at
  // sigma = tau_i leaves few effective particles it decays slowly), K = 100 independent runs each.
  SmcGmm g;
  const int64_t k = 100, measurements = 4;
  const int64_t most = 256;
  const std::vector<int64_t> particles{2, 16, most};
  std::map<int64_t, double> sw, weight_error;
  std::map<int64_t, int64_t> lost;
  double floor_mean = 0, floor_var = 0, prior_sw = 0;
  for (int64_t m = 0; m < measurements; ++m) {
    auto y = g.noise.sample(g.op.forward(g.gmm.sample(1, g.gen)), g.gen);
    Problem problem(g.gmm, g.op, g.noise, y);
    auto post = g.gmm.exact_posterior(g.op, g.noise.sigma_y, y);
    auto rg = make_generator(99 + m);
    const auto ref = post->sample(2000, rg);
    // Floor: K exact draws against the reference, 16 replicates.
    std::vector<double> floor;
    for (int r = 0; r < 16; ++r) floor.push_back(smc_sw(post->sample(k, rg), ref));
    const auto ft = at::tensor(floor, at::TensorOptions().dtype(at::kDouble));
    floor_mean += ft.mean().item<double>() / measurements;
    floor_var += ft.var().item<double>() / (measurements * measurements);
    prior_sw += smc_sw(g.gmm.sample(k, rg), ref) / measurements;
    const auto w_exact = post->component_weights();
    for (int64_t p : particles) {
      options["particles"] = p;
      options["steps"] = int64_t{100};
      auto out = make_sampler(sampler, options)->run(problem, k, chain_seeds(k, 31 + m));
      // A run whose particles all ran away is diverged: allowed at P = 2 and 16 (TDS's twisted proposal throws
      // particles out on this mixture), never with 256 particles.
      const int64_t kept = out.samples.size(0);
      lost[p] += k - kept;
      INFO(sampler << ", P=" << p << ", measurement " << m << ": " << out.divergence_message);
      REQUIRE(kept >= (p == most ? k : k / 2));
      if (kept == k) {
        // One denoiser call per particle and level, for each of the K runs (TDS: with its gradient).
        const bool gradient = sampler == "tds";
        CHECK(out.sampling_nfe.forward == (gradient ? 0 : k * p * 100));
        CHECK(out.sampling_nfe.forward_backward == (gradient ? k * p * 100 : 0));
      }
      REQUIRE(out.trace.count("ess_fraction"));
      REQUIRE(out.trace.count("resampled"));
      sw[p] += smc_sw(out.samples, ref) / measurements;
      auto counts = at::bincount(post->assign_components(out.samples), {}, w_exact.size(0)).to(at::kDouble);
      weight_error[p] += 0.5 * (counts / static_cast<double>(kept) - w_exact).abs().sum().item<double>() / measurements;
    }
  }
  const double floor_sd = std::sqrt(floor_var);
  // The bound for P = 256: twice the floor's mean + 4 sd (the exact-in-the-limit baselines of baselines_test.cpp
  // get 1.5x; MCGdiff's finite-P bias decays more slowly on some measurements, see above).
  const double bound = 2 * floor_mean + 4 * floor_sd;
  INFO(sampler << ": mean SW over measurements: P=2 " << sw[2] << ", P=16 " << sw[16] << ", P=" << most << " " << sw[most] << "; prior "
                                          << prior_sw << ", exact floor " << floor_mean << " +- " << floor_sd
                                          << ", bound " << bound << "; weight error P=2 " << weight_error[2]
                                          << ", P=16 " << weight_error[16] << ", P=" << most << " " << weight_error[most] << "; runs lost at P=2 "
                          << lost[2] << ", P=16 " << lost[16]);
  CHECK(prior_sw > 2 * bound);
  if (near_floor) CHECK(sw[most] < bound);
  CHECK(sw[most] < sw[16]);
  CHECK(sw[16] < sw[2]);
  CHECK(weight_error[most] < weight_error[16]);
  CHECK(weight_error[16] < weight_error[2]);
}

}  // namespace

TEST_CASE("MCGdiff reaches the exact posterior of a Gaussian mixture as particles grow", "[baselines][smc][statistical]") {
  check_reaches_exact("mcgdiff", true);
}

TEST_CASE("TDS moves toward the exact posterior of a Gaussian mixture as particles grow", "[baselines][smc][statistical]") {
  // twist_scale 0.3: at 1 the twisted proposal's gradient step throws every particle of some runs out on this
  // mixture (11 of 100 runs of measurement 0 at P = 256); a softer twist leaves the target exact. TDS's weights
  // degenerate far more than MCGdiff's here: mean SW 8.7 / 7.5 / 6.0 at P = 2 / 16 / 256 and 4.5 at P = 2048,
  // against MCGdiff's 2.1 at 256 and the exact floor 1.5. So the bound near the floor is not checked; exactness
  // is checked on a Gaussian prior ("TDS matches the exact posterior of a Gaussian prior").
  check_reaches_exact("tds", false, {{"twist_scale", 0.3}});
}

TEST_CASE("MCGdiff and TDS get the posterior mode weights of a two-mode mixture right where DPS does not",
          "[baselines][smc][statistical]") {
  // Two well-separated modes at (-6, -6) and (6, 6), prior weights 0.5 each; a weak measurement of a random
  // direction puts the posterior weights away from 0.5.
  auto means = at::tensor({-6.0, -6.0, 6.0, 6.0}, at::TensorOptions().dtype(at::kDouble)).view({2, 2});
  GaussianMixture gmm(means, at::full({2}, 0.5, at::TensorOptions().dtype(at::kDouble)), 1.0);
  auto gen = make_generator(4);
  LowRankOperator op(2, 1, gen);
  // y halfway between the measured first mode and the origin: the weights' log-ratio is
  // (A mu_0)^2 / (sigma_y^2 + |A|^2), set to ln 4 by sigma_y (posterior weight 0.8 on the first mode).
  const double a0 = op.forward(means[0].unsqueeze(0)).item<double>();
  const double a_norm2 = op.forward(at::eye(2, at::kDouble)).pow(2).sum().item<double>();
  GaussianNoise noise{std::sqrt(std::max(a0 * a0 / std::log(4.0) - a_norm2, 1e-2))};
  auto y = at::full({1, 1}, 0.5 * a0, at::kDouble);
  auto post = gmm.exact_posterior(op, noise.sigma_y, y);
  const double w0 = post->component_weights()[0].item<double>();
  INFO("exact posterior weight of the first mode " << w0 << ", sigma_y " << noise.sigma_y);
  REQUIRE(std::abs(w0 - 0.5) > 0.2);  // the problem is chosen to be lopsided
  Problem problem(gmm, op, noise, y);
  const int64_t k = 400;
  auto weight_of = [&](const at::Tensor& samples) {
    return (post->assign_components(samples) == 0).to(at::kDouble).mean().item<double>();
  };
  const std::map<std::string, OptionValue> smc_options{{"particles", int64_t{128}}, {"steps", int64_t{100}}};
  const double w_mcgdiff = weight_of(make_sampler("mcgdiff", smc_options)->run(problem, k, chain_seeds(k, 5)).samples);
  // MCGdiff is exact in P on any grid: the published benchmark's (grid vp_linear) as well.
  auto vp_options = smc_options;
  vp_options["grid"] = std::string("vp_linear");
  const double w_mcgdiff_vp = weight_of(make_sampler("mcgdiff", vp_options)->run(problem, k, chain_seeds(k, 5)).samples);
  const double w_tds = weight_of(make_sampler("tds", smc_options)->run(problem, k, chain_seeds(k, 5)).samples);
  const double w_fps = weight_of(make_sampler("fps", smc_options)->run(problem, k, chain_seeds(k, 5)).samples);
  auto dps = make_sampler("dps", {{"steps", int64_t{100}}, {"step_scale", 1.0}})->run(problem, k, chain_seeds(k, 5));
  const double w_dps = weight_of(dps.samples);
  // Binomial standard error of a weight estimated from K independent runs.
  const double se = std::sqrt(w0 * (1 - w0) / static_cast<double>(k));
  INFO("weight of mode 0: exact " << w0 << ", MCGdiff " << w_mcgdiff << " (grid vp_linear " << w_mcgdiff_vp << "), TDS " << w_tds << ", DPS " << w_dps
                                  << ", FPS (not exact; not checked) " << w_fps << " (se " << se << ")");
  CHECK(std::abs(w_mcgdiff - w0) < 4 * se);
  CHECK(std::abs(w_mcgdiff_vp - w0) < 4 * se);
  CHECK(std::abs(w_tds - w0) < 4 * se);
  CHECK(std::abs(w_dps - w0) > 8 * se);
}

TEST_CASE("SMC samplers draw several samples from one run the same whatever the batch of runs", "[baselines][smc]") {
  SmcGmm g;
  auto problem = g.problem();
  for (const std::string name : {"mcgdiff", "fps", "tds"}) {
    INFO(name);
    std::map<std::string, OptionValue> options{
        {"particles", int64_t{16}}, {"steps", int64_t{10}}, {"samples_per_run", int64_t{4}}};
    // TDS's plain twist throws all 16 particles of one run out at 10 levels here (see its GMM test).
    if (name == "tds") options["twist_scale"] = 0.3;
    auto s = make_sampler(name, options);
    CHECK(s->num_chains(8) == 2);
    CHECK(s->planned_nfe(8, g.gmm) == 2 * 16 * 10);
    CHECK_FALSE(s->draws_form_chains());
    auto out = s->run(problem, 8, chain_seeds(2, 3));
    CHECK(out.samples.size(0) == 8);
    CHECK(out.sampling_nfe.total() == 2 * 16 * 10);
    // Same seeds, same samples, whatever the batch of runs.
    auto one_at_a_time = options;
    one_at_a_time["batch_size"] = int64_t{1};
    auto one_by_one = make_sampler(name, one_at_a_time)->run(problem, 8, chain_seeds(2, 3));
    CHECK(at::allclose(out.samples, one_by_one.samples, 1e-10, 1e-12));
    CHECK_THROWS_WITH(s->num_chains(6), Catch::Contains("samples_per_run=4"));
  }
}

TEST_CASE("Chain diagnostics are not computed on the draws of an SMC run", "[baselines][smc][cli]") {
  CHECK_FALSE(make_sampler("mcgdiff", {})->draws_form_chains());
  CHECK(make_sampler("noise_langevin", {})->draws_form_chains());
  const auto dir = temp_dir("smc_diagnostics");
  {
    std::ofstream f(dir + "/smc.yaml");
    f << "name: smc_diagnostics\nseed: 1\nmeasurements: 1\nsamples_per_measurement: 8\n"
         "metrics: [ess_bulk, rhat, posterior_mean_rmse]\n"
         "tasks: [{name: gmm_lowrank, d_y: 2, sigma_y: 0.3}]\npriors: [{name: gmm, dim: 4, ode_steps: 2}]\n"
         "samplers: [{name: mcgdiff, particles: 8, steps: 5, samples_per_run: 4}]\n";
  }
  REQUIRE(run_cli("run " + dir + "/smc.yaml --out " + dir + "/smc.h5", dir + "/run.log") == 0);
  auto cells = Hdf5Store(dir + "/smc.h5", "r").read_all();
  REQUIRE(cells.size() == 1);
  const auto& c = cells.front();
  CHECK(c.attr("status") == "ok");
  CHECK(c.arrays.count("metrics/posterior_mean_rmse"));
  CHECK_FALSE(c.arrays.count("metrics/ess_bulk"));
  CHECK_FALSE(c.arrays.count("metrics/rhat"));
  CHECK(c.attr("metrics_skipped").find("not Markov chains") != std::string::npos);
  std::filesystem::remove_all(dir);
}

namespace {

// FPS's limit as P grows, per spectral coordinate, for a Gaussian prior N(mu0, c2 I): with infinitely many
// particles its particle filter is the Kalman filter of the same state-space model, so a run ends at
// N(mu_S, P_S), where P_S does not depend on the run's observations and mu_S is an affine function of them;
// over runs the output is N(E mu_S, P_S + Var mu_S). The recursion carries the mean and covariance of
// (mu_k, y_tilde_k) through the prior's ancestral kernel x' = alpha x + beta + sqrt(v) xi, the Kalman update and
// the y bridge (s = 0 for a coordinate off the range: the prior chain alone).
struct FpsLimit {
  double mean, var;
};
FpsLimit fps_limit(double y, double s, double sigma_y, double mu0, double c2, const std::vector<double>& sig) {
  const double s0 = sig[0], sy2 = sigma_y * sigma_y;
  double k = s * s0 * s0 / (s * s * s0 * s0 + sy2), p = s0 * s0 - k * s * s0 * s0;
  // Start: y0 = y + s0 s eps, mu = k y0.
  double m_mu = k * y, m_y = y;
  double c_mm = k * k * s0 * s0 * s * s, c_my = k * s0 * s0 * s * s, c_yy = s0 * s0 * s * s;
  for (size_t i = 0; i + 1 < sig.size(); ++i) {
    const double a = sig[i + 1] * sig[i + 1] / (sig[i] * sig[i]), v = sig[i + 1] * sig[i + 1] * (1 - a);
    const double alpha = a + (1 - a) * c2 / (c2 + sig[i] * sig[i]);
    const double beta = (1 - a) * sig[i] * sig[i] * mu0 / (c2 + sig[i] * sig[i]);
    const double pm = alpha * alpha * p + v;
    const double g = s * pm / (s * s * pm + sy2);
    p = pm - g * s * pm;
    // mu' = (1 - g s)(alpha mu + beta) + g y', y' = a y + (1 - a) y_obs + s sqrt(v) xi.
    const double t11 = (1 - g * s) * alpha, t12 = g * a, t22 = a;
    const double n_mm = t11 * t11 * c_mm + 2 * t11 * t12 * c_my + t12 * t12 * c_yy + g * g * s * s * v;
    const double n_my = t11 * t22 * c_my + t12 * t22 * c_yy + g * s * s * v;
    const double n_yy = t22 * t22 * c_yy + s * s * v;
    m_mu = t11 * m_mu + t12 * m_y + (1 - g * s) * beta + g * (1 - a) * y;
    m_y = a * m_y + (1 - a) * y;
    c_mm = n_mm, c_my = n_my, c_yy = n_yy;
  }
  return {m_mu, p + c_mm};
}

// A Gaussian prior N(mu0, I) in d = 4 (a one-component mixture), a rank-2 measurement, sigma_y = 0.5, and the
// exact posterior per spectral coordinate (precision 1 + s^2 / sigma_y^2).
struct SmcGaussian {
  at::Generator gen = make_generator(11);
  at::Tensor mu0 = at::tensor({1.0, -1.0, 0.5, 2.0}, at::TensorOptions().dtype(at::kDouble));
  GaussianMixture prior{mu0.view({1, 4}), at::ones({1}, at::TensorOptions().dtype(at::kDouble)), 1.0};
  LowRankOperator op{4, 2, gen};
  GaussianNoise noise{0.5};
  at::Tensor y = noise.sample(op.forward(prior.sample(1, gen)), gen);
  std::shared_ptr<const SvdView> svd = op.svd();
  at::Tensor ybar = svd->ut(y.to(at::kDouble))[0], mubar = svd->vt(mu0.view({1, 4}))[0];
  Problem problem() const { return Problem(prior, op, noise, y); }
  double s(int64_t i) const { return i < svd->rank() ? svd->singular_values()[i].item<double>() : 0.0; }
  double yb(int64_t i) const { return i < svd->rank() ? ybar[i].item<double>() : 0.0; }
  FpsLimit posterior(int64_t i) const {
    const double var = 1.0 / (1.0 + s(i) * s(i) / (noise.sigma_y * noise.sigma_y));
    return {var * (mubar[i].item<double>() + s(i) * yb(i) / (noise.sigma_y * noise.sigma_y)), var};
  }
};

}  // namespace

TEST_CASE("FPS reaches its own closed-form limit on a Gaussian prior and not the posterior",
          "[baselines][smc][statistical]") {
  SmcGaussian g;
  auto problem = g.problem();
  const int64_t k = 1000, steps = 20;
  auto out = make_sampler("fps", {{"particles", int64_t{1024}}, {"steps", steps}})->run(problem, k, chain_seeds(k, 3));
  REQUIRE(out.samples.size(0) == k);
  CHECK(out.sampling_nfe.forward == k * 1024 * steps);
  const auto coords = g.svd->vt(out.samples.to(at::kDouble));  // [K, 4]
  const auto mean = coords.mean(0), var = coords.var(0);
  const auto& den = problem.denoiser("fps");
  const auto sig = karras_sigmas(steps, den.sigma_min(), den.sigma_max());
  for (int64_t i = 0; i < 4; ++i) {
    const auto lim = fps_limit(g.yb(i), g.s(i), g.noise.sigma_y, g.mubar[i].item<double>(), 1.0, sig);
    const auto post = g.posterior(i);
    const double m = mean[i].item<double>(), v = var[i].item<double>();
    INFO("coordinate " << i << " (s " << g.s(i) << "): FPS mean " << m << " var " << v << "; limit " << lim.mean << ", "
                       << lim.var << "; posterior " << post.mean << ", " << post.var);
    // Monte-Carlo error of K runs: sd / sqrt(K) for the mean, var sqrt(2 / K) for the variance.
    CHECK(std::abs(m - lim.mean) < 4 * std::sqrt(lim.var / k));
    CHECK(std::abs(v - lim.var) < 4 * lim.var * std::sqrt(2.0 / k));
    if (g.s(i) > 0) CHECK(v < 0.7 * post.var);  // over-counted likelihood: narrower than the posterior
  }
}

TEST_CASE("TDS matches the exact posterior of a Gaussian prior", "[baselines][smc][statistical]") {
  SmcGaussian g;
  auto problem = g.problem();
  const int64_t k = 1000;
  auto out = make_sampler("tds", {{"particles", int64_t{256}}, {"steps", int64_t{100}}})->run(problem, k, chain_seeds(k, 3));
  REQUIRE(out.samples.size(0) == k);
  CHECK(out.sampling_nfe.forward_backward == k * 256 * 100);
  const auto coords = g.svd->vt(out.samples.to(at::kDouble));
  const auto mean = coords.mean(0), var = coords.var(0);
  for (int64_t i = 0; i < 4; ++i) {
    const auto post = g.posterior(i);
    const double m = mean[i].item<double>(), v = var[i].item<double>();
    INFO("coordinate " << i << " (s " << g.s(i) << "): TDS mean " << m << " var " << v << "; posterior " << post.mean
                       << ", " << post.var);
    CHECK(std::abs(m - post.mean) < 4 * std::sqrt(post.var / k));
    CHECK(std::abs(v - post.var) < 4 * post.var * std::sqrt(2.0 / k));
  }
}

TEST_CASE("grid vp_linear is a linear-beta DDPM read as sigma at evenly spaced timesteps from T, and too many steps are refused",
          "[baselines]") {
  // abar_t as the plain product of (1 - beta_s), beside the implementation's sum of log1p.
  std::vector<double> abar(kVpTimesteps + 1, 1.0);
  for (int64_t t = 1; t <= kVpTimesteps; ++t)
    abar[t] = abar[t - 1] * (1 - (1e-4 + (0.02 - 1e-4) * static_cast<double>(t - 1) / 999.0));
  for (int64_t steps : {1, 20, 100, 1000}) {
    INFO("steps " << steps);
    const auto s = vp_linear_sigmas(steps);
    REQUIRE(static_cast<int64_t>(s.size()) == steps + 1);
    CHECK(s.back() == 0.0);
    for (int64_t i = 0; i < steps; ++i) {
      // Largest timestep first: T, then evenly spaced down to 1.
      const int64_t t = steps == 1 ? 1000 : 1000 - std::llround(i * 999.0 / static_cast<double>(steps - 1));
      if (i == 0) CHECK(t == 1000);
      if (i == steps - 1 && steps > 1) CHECK(t == 1);
      CHECK(s[i] == Approx(std::sqrt(1 / abar[t] - 1)).epsilon(1e-9));
      if (i > 0) CHECK(s[i] < s[i - 1]);
    }
  }
  CHECK(vp_linear_sigmas(20)[0] == Approx(157.407).epsilon(1e-5));  // t = T: abar_T = 4.036e-5
  CHECK(vp_linear_sigmas(20)[19] == Approx(std::sqrt(1e-4 / (1 - 1e-4))).epsilon(1e-9));  // t = 1
  SmcGmm g;
  auto sampler = make_sampler("dps", {{"steps", int64_t{1001}}, {"grid", std::string("vp_linear")}});
  CHECK_THROWS_WITH(sampler->run(g.problem(), 2, chain_seeds(2, 1)),
                    Catch::Contains("sampler dps: grid vp_linear has 1000 timesteps, and steps=1001"));
}
