// MCMC diagnostics (metrics/mcmc_diagnostics.h) and the metrics ess_bulk, ess_tail, rhat and iat.
// Written from the definitions in Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021) (VGSCB) and
// Geyer (1992); autocovariances by FFT (checked against the direct sum in tests/metrics).
#include "metrics/mcmc_diagnostics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"
#include "metrics/metric.h"
#include "operators/operator.h"

namespace psbench {
namespace {

at::Tensor as_chains(const at::Tensor& draws, int64_t min_chains, int64_t min_draws, const char* what) {
  if (draws.dim() != 2)
    throw std::invalid_argument(std::string(what) + ": draws must be [chains, draws], got " +
                                std::to_string(draws.dim()) + " dimensions");
  if (draws.size(0) < min_chains || draws.size(1) < min_draws)
    throw std::invalid_argument(std::string(what) + " needs at least " + std::to_string(min_chains) + " chains of " +
                                std::to_string(min_draws) + " draws, got " + std::to_string(draws.size(0)) + " of " +
                                std::to_string(draws.size(1)));
  return draws.to(at::kDouble).contiguous();
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Chain means, the unbiased within-chain variances' mean W and var+ = (N-1)/N W + B/N.
struct VarianceParts {
  double w = 0, var_plus = 0;
};
VarianceParts variance_parts(const at::Tensor& x) {
  const int64_t m = x.size(0), n = x.size(1);
  const double w = x.var(1, /*unbiased=*/true).mean().item<double>();
  const double b_over_n = m > 1 ? x.mean(1).var(0, /*unbiased=*/true).item<double>() : 0.0;  // B / N
  return {w, (n - 1.0) / n * w + b_over_n};
}

}  // namespace

at::Tensor split_chains(const at::Tensor& draws) {
  auto x = as_chains(draws, 1, 2, "split_chains");
  const int64_t half = x.size(1) / 2;  // an odd N loses its middle draw
  return at::cat({x.narrow(1, 0, half), x.narrow(1, x.size(1) - half, half)}, 0).contiguous();
}

at::Tensor rank_normalize(const at::Tensor& draws) {
  auto x = draws.to(at::kDouble).contiguous();
  const int64_t s = x.numel();
  const double* v = x.data_ptr<double>();
  std::vector<int64_t> order(s);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] < v[b]; });
  std::vector<double> rank(s);
  for (int64_t i = 0; i < s;) {
    int64_t j = i;
    while (j + 1 < s && v[order[j + 1]] == v[order[i]]) ++j;
    const double average = 0.5 * static_cast<double>(i + j) + 1.0;  // ranks i+1 .. j+1
    for (int64_t k = i; k <= j; ++k) rank[order[k]] = average;
    i = j + 1;
  }
  auto r = at::tensor(rank, at::TensorOptions().dtype(at::kDouble)).view(x.sizes());
  auto p = (r - 3.0 / 8.0) / (static_cast<double>(s) + 0.25);  // Blom's plotting positions, in (0, 1)
  return std::sqrt(2.0) * at::erfinv(2.0 * p - 1.0);            // Phi^-1(p)
}

at::Tensor autocovariance(const at::Tensor& chains) {
  auto x = chains.to(at::kDouble);
  const int64_t n = x.size(1);
  int64_t nfft = 1;
  while (nfft < 2 * n) nfft *= 2;  // >= 2N: the circular correlation of the padded series is the linear one
  auto c = x - x.mean(1, true);
  auto f = at::fft_rfft(c, nfft, 1);
  auto power = at::abs(f).pow(2);  // |F|^2: the Fourier transform of the circular autocorrelation
  auto acf = at::fft_irfft(power.to(at::kComplexDouble), nfft, 1).narrow(1, 0, n);
  return acf / static_cast<double>(n);
}

at::Tensor autocovariance_direct(const at::Tensor& chains) {
  auto x = chains.to(at::kDouble);
  const int64_t n = x.size(1);
  auto c = x - x.mean(1, true);
  auto out = at::zeros_like(c);
  for (int64_t t = 0; t < n; ++t)
    out.select(1, t).copy_((c.narrow(1, 0, n - t) * c.narrow(1, t, n - t)).sum(1) / static_cast<double>(n));
  return out;
}

at::Tensor multichain_autocorrelation(const at::Tensor& chains) {
  auto x = as_chains(chains, 1, 2, "multichain_autocorrelation");
  const int64_t n = x.size(1);
  const auto parts = variance_parts(x);
  if (!(parts.var_plus > 0)) return at::full({n}, kNaN, at::TensorOptions().dtype(at::kDouble));
  // s_m^2 rho_{t,m} = gamma_{m,t} N / (N - 1): no division by a constant chain's zero variance.
  auto s2_rho = autocovariance(x) * (static_cast<double>(n) / (n - 1.0));
  return 1.0 - (parts.w - s2_rho.mean(0)) / parts.var_plus;
}

double autocorrelation_time_basic(const at::Tensor& chains) {
  auto x = as_chains(chains, 1, 2, "autocorrelation_time");
  const int64_t n = x.size(1);
  auto rho_t = multichain_autocorrelation(x);
  const double* rho = rho_t.data_ptr<double>();
  if (std::isnan(rho[0])) return kNaN;
  // Geyer's initial positive sequence of pair sums, made monotone; the first pair is always kept.
  double sum = 0, previous = std::numeric_limits<double>::infinity();
  for (int64_t t = 0; t + 1 < n; t += 2) {
    double pair = rho[t] + rho[t + 1];
    if (t > 0 && pair <= 0) break;
    pair = std::min(pair, previous);
    sum += pair;
    previous = pair;
  }
  const double tau = -1.0 + 2.0 * sum;
  return std::max(tau, 1.0 / std::log10(static_cast<double>(x.numel())));
}

double ess_basic(const at::Tensor& chains) {
  return static_cast<double>(chains.numel()) / autocorrelation_time_basic(chains);
}

double rhat_basic(const at::Tensor& chains) {
  auto x = as_chains(chains, 2, 2, "rhat");
  const auto parts = variance_parts(x);
  if (!(parts.var_plus > 0)) return kNaN;
  if (!(parts.w > 0)) return std::numeric_limits<double>::infinity();
  return std::sqrt(parts.var_plus / parts.w);
}

double pooled_quantile(const at::Tensor& draws, double alpha) {
  auto v = std::get<0>(draws.to(at::kDouble).flatten().sort());
  const int64_t s = v.numel();
  const double h = (s - 1) * alpha;
  const int64_t lo = static_cast<int64_t>(std::floor(h)), hi = std::min(lo + 1, s - 1);
  const double a = v[lo].item<double>(), b = v[hi].item<double>();
  return a + (h - lo) * (b - a);
}

double integrated_autocorrelation_time(const at::Tensor& draws) {
  as_chains(draws, 1, 4, "integrated_autocorrelation_time");
  return autocorrelation_time_basic(split_chains(draws));
}

double ess_bulk(const at::Tensor& draws) {
  as_chains(draws, 1, 4, "ess_bulk");
  auto s = split_chains(draws);
  if (!(s.max().item<double>() > s.min().item<double>())) return kNaN;
  return ess_basic(rank_normalize(s));
}

double ess_tail(const at::Tensor& draws) {
  auto x = as_chains(draws, 1, 4, "ess_tail");
  if (!(x.max().item<double>() > x.min().item<double>())) return kNaN;
  double ess = std::numeric_limits<double>::infinity();
  for (double alpha : {0.05, 0.95}) {
    auto indicator = (x <= pooled_quantile(x, alpha)).to(at::kDouble);
    const double e = ess_basic(split_chains(indicator));
    if (std::isnan(e)) return kNaN;  // an indicator constant over all draws (heavy ties)
    ess = std::min(ess, e);
  }
  return ess;
}

double split_rhat(const at::Tensor& draws) {
  auto x = as_chains(draws, 2, 4, "split_rhat");
  if (!(x.max().item<double>() > x.min().item<double>())) return kNaN;
  const double bulk = rhat_basic(rank_normalize(split_chains(x)));
  // Folding around the median makes R-hat see chains that differ in scale rather than location.
  const double folded = rhat_basic(rank_normalize(split_chains((x - pooled_quantile(x, 0.5)).abs())));
  if (std::isnan(folded)) return bulk;  // |x - median| constant: only the location is informative
  return std::max(bulk, folded);
}

namespace {

// The scalar summaries of a measurement's chain-major samples, [S, M, N]: the likelihood potential
// R(x) = ||y - A(x)||^2 / (2 sigma_y^2), then `projections` fixed random unit projections <u_p, x>, the
// directions drawn from the measurement's seed (the same for every sampler of a measurement).
struct ChainSummaries {
  at::Tensor values;               // [S, M, N]
  std::vector<std::string> names;  // potential, projection_0, ...
};

ChainSummaries chain_summaries(const MetricInput& in, int64_t projections) {
  const int64_t k = in.samples.size(0), m = in.chains, n = m > 0 ? k / m : 0;
  std::vector<at::Tensor> rows;
  ChainSummaries out;
  if (in.op && in.sigma_y > 0) {
    auto ax = in.op->forward(in.samples).to(at::kDouble);
    rows.push_back(GaussianNoise{in.sigma_y}.potential(in.y.to(at::kDouble).unsqueeze(0), ax));
    out.names.push_back("potential");
  }
  auto gen = make_generator(derive_seed({in.measurement_seed, static_cast<uint64_t>(Stream::Metric), 3}));
  auto flat = in.samples.flatten(1).to(at::kDouble);
  auto proj = flat.matmul(random_unit_directions(flat.size(1), projections, gen));  // [K, P]
  for (int64_t p = 0; p < projections; ++p) {
    rows.push_back(proj.select(1, p));
    out.names.push_back("projection_" + std::to_string(p));
  }
  out.values = at::stack(rows).view({static_cast<int64_t>(rows.size()), m, n});
  return out;
}

enum class Diagnostic { EssBulk, EssTail, Rhat, Iat };

class McmcDiagnostic : public Metric {
 public:
  McmcDiagnostic(Diagnostic kind, const Options& o) : kind_(kind), projections_(o.get_int("projections")) {}
  bool lower_is_better() const override { return kind_ == Diagnostic::Rhat || kind_ == Diagnostic::Iat; }
  double target(int64_t num_samples) const override {
    return kind_ == Diagnostic::Rhat ? 1.0 : Metric::target(num_samples);
  }
  MetricLevel level() const override { return MetricLevel::PerMeasurement; }
  std::string sampler_unsupported(const MetricContext& c) const override {
    if (!c.draws_form_chains)
      return "the sampler's draws are not Markov chains (e.g. an SMC run's draws from its final particles)";
    if (c.chains <= 0 || c.draws_per_chain <= 0) return "";  // unknown here: checked per measurement
    return chain_problem(c.chains, c.draws_per_chain, "the sampler runs ");
  }
  double compute(const MetricInput& in) const override {
    auto v = per_summary(in);
    // The worst summary: the smallest ESS, the largest R-hat or autocorrelation time.
    return (lower_is_better() ? v.max() : v.min()).item<double>();
  }
  std::map<std::string, at::Tensor> extra_arrays(const MetricInput& in) const override {
    return {{"per_summary", per_summary(in)}};
  }

 private:
  std::string chain_problem(int64_t chains, int64_t draws, const std::string& who) const {
    const std::string has = who + std::to_string(chains) + " chain" + (chains == 1 ? "" : "s") + " of " +
                            std::to_string(draws) + " draw" + (draws == 1 ? "" : "s");
    if (draws < 4)
      return "needs at least 4 draws per chain (split into halves of 2), " + has +
             (draws == 1 ? " (one draw per chain: no chain to diagnose)" : "");
    if (kind_ == Diagnostic::Rhat && chains < 2) return "needs at least 2 chains, " + has;
    return "";
  }

  at::Tensor per_summary(const MetricInput& in) const {
    const int64_t k = in.samples.size(0), m = in.chains;
    if (m <= 0) throw MetricNotApplicable("the number of chains behind the samples is unknown");
    if (k % m != 0)
      throw std::logic_error("mcmc diagnostics: " + std::to_string(k) + " samples do not split into " +
                             std::to_string(m) + " chains");
    if (auto why = chain_problem(m, k / m, "after divergence there are "); !why.empty()) throw MetricNotApplicable(why);
    auto s = chain_summaries(in, projections_);
    std::vector<double> out;
    for (int64_t i = 0; i < s.values.size(0); ++i) {
      const auto draws = s.values[i];
      double v = 0;
      switch (kind_) {
        case Diagnostic::EssBulk: v = ess_bulk(draws); break;
        case Diagnostic::EssTail: v = ess_tail(draws); break;
        case Diagnostic::Rhat: v = split_rhat(draws); break;
        case Diagnostic::Iat: v = integrated_autocorrelation_time(draws); break;
      }
      if (std::isnan(v)) throw MetricNotApplicable("summary " + s.names[i] + " is constant over all draws");
      out.push_back(v);
    }
    return at::tensor(out, at::TensorOptions().dtype(at::kDouble));
  }

  Diagnostic kind_;
  int64_t projections_;
};

std::vector<OptionSpec> mcmc_diagnostics_options() {
  return {OptionSpec::integer("projections", 3,
                              "fixed random unit projections of the sample used as summaries, besides the likelihood "
                              "potential (directions from the measurement's seed)")
              .at_least(1)};
}

MetricRegistry::Entry mcmc_entry(const char* name, const char* help, Diagnostic kind) {
  return {name, help, mcmc_diagnostics_options(),
          [kind](const Options& o) { return std::make_unique<McmcDiagnostic>(kind, o); }};
}

MetricRegistrar reg_mcmc_ess_bulk(mcmc_entry(
    "ess_bulk",
    "bulk effective sample size (rank-normalised split chains, Vehtari et al. 2021), the smallest over the "
    "likelihood potential and `projections` random projections; per summary in metric_arrays/ess_bulk/per_summary",
    Diagnostic::EssBulk));
MetricRegistrar reg_mcmc_ess_tail(mcmc_entry(
    "ess_tail",
    "tail effective sample size (min of the ESS of the 5% and 95% quantile indicators, Vehtari et al. 2021), the "
    "smallest over the summaries",
    Diagnostic::EssTail));
MetricRegistrar reg_mcmc_rhat(mcmc_entry(
    "rhat",
    "split R-hat, max of rank-normalised bulk and folded (Vehtari et al. 2021), the largest over the summaries; "
    "target 1 (< 1.01 recommended)",
    Diagnostic::Rhat));
MetricRegistrar reg_mcmc_iat(mcmc_entry(
    "iat",
    "integrated autocorrelation time tau = 1 + 2 sum rho_t of the split chains (Geyer's initial monotone sequence), "
    "the largest over the summaries; ESS = M N / tau",
    Diagnostic::Iat));

}  // namespace
}  // namespace psbench
