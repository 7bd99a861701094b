// Metrics against the exact posterior of an analytic prior, and the plain error to the ground truth.
#include <cmath>

#include "core/rng.h"
#include "metrics/metric.h"

namespace psbench {

at::Tensor wasserstein2_sq_sorted(const at::Tensor& a, const at::Tensor& b) { return wasserstein_pow_sorted(a, b, 2.0); }

at::Tensor wasserstein_pow_sorted(const at::Tensor& a, const at::Tensor& b, double p) {
  // Quantile functions are step functions with jumps at i/n and j/m; integrate (Qa - Qb)^2 over the
  // merged breakpoints. Exact for empirical measures of any sizes.
  const int64_t n = a.size(0), m = b.size(0);
  std::vector<double> cuts;
  cuts.reserve(n + m);
  for (int64_t i = 1; i <= n; ++i) cuts.push_back(static_cast<double>(i) / n);
  for (int64_t j = 1; j <= m; ++j) cuts.push_back(static_cast<double>(j) / m);
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> ia, ib;
  std::vector<double> w;
  double prev = 0;
  for (double u : cuts) {
    if (u - prev <= 1e-15) continue;
    const double mid = 0.5 * (prev + u);
    ia.push_back(std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor(mid * n))));
    ib.push_back(std::min<int64_t>(m - 1, static_cast<int64_t>(std::floor(mid * m))));
    w.push_back(u - prev);
    prev = u;
  }
  auto opts = at::TensorOptions().dtype(at::kDouble);
  auto qa = a.to(at::kDouble).index_select(0, at::tensor(ia, at::kLong));
  auto qb = b.to(at::kDouble).index_select(0, at::tensor(ib, at::kLong));
  auto wt = at::tensor(w, opts).unsqueeze(1);
  // In place: at the sliced metrics' sizes ((n + m) x 1000 doubles, 32 MB) every temporary is a fresh mapping
  // the kernel must zero; the values are those of ((qa - qb).abs().pow(p) * wt).
  qa.sub_(qb).abs_();
  if (p != 1.0) qa.pow_(p);
  return qa.mul_(wt).sum(0);
}

const at::Tensor& reference_draws(const MetricInput& in, int64_t n) {
  auto it = in.reference_cache.find(n);
  if (it != in.reference_cache.end()) return it->second;
  auto gen = make_generator(derive_seed({in.measurement_seed, static_cast<uint64_t>(Stream::Reference)}));
  return in.reference_cache[n] = in.exact->sample(n, gen);
}

at::Tensor random_unit_directions(int64_t dim, int64_t projections, at::Generator& gen) {
  auto theta = at::randn({dim, projections}, gen, at::TensorOptions().dtype(at::kDouble));
  return theta / theta.norm(2, 0, true);
}

namespace {
// W_p^p of the two clouds' projections on `projections` random unit directions, per direction.
at::Tensor projected_wasserstein_pow(const at::Tensor& a, const at::Tensor& b, int64_t projections, at::Generator& gen,
                                     double p) {
  auto af = a.flatten(1).to(at::kDouble), bf = b.flatten(1).to(at::kDouble);
  const auto theta = random_unit_directions(af.size(1), projections, gen);
  auto pa = std::get<0>(af.matmul(theta).sort(0));
  auto pb = std::get<0>(bf.matmul(theta).sort(0));
  return wasserstein_pow_sorted(pa, pb, p);
}
}  // namespace

double sliced_wasserstein(const at::Tensor& a, const at::Tensor& b, int64_t projections, at::Generator& gen) {
  return std::sqrt(projected_wasserstein_pow(a, b, projections, gen, 2.0).mean().item<double>());
}

double sliced_wasserstein_mean_w1(const at::Tensor& a, const at::Tensor& b, int64_t projections, at::Generator& gen) {
  return projected_wasserstein_pow(a, b, projections, gen, 1.0).mean().item<double>();
}

namespace {

class SlicedWasserstein : public Metric {
 public:
  SlicedWasserstein(const Options& o, bool mean_w1)
      : projections_(o.get_int("projections")), reference_(o.get_int("reference_samples")), mean_w1_(mean_w1) {}
  bool lower_is_better() const override { return true; }
  MetricLevel level() const override { return MetricLevel::PerMeasurement; }
  bool needs_exact_posterior() const override { return true; }
  double compute(const MetricInput& in) const override {
    const auto& ref = reference_draws(in, reference_);
    auto proj_gen = make_generator(derive_seed({in.measurement_seed, static_cast<uint64_t>(Stream::Metric), 1}));
    return mean_w1_ ? sliced_wasserstein_mean_w1(in.samples, ref, projections_, proj_gen)
                    : sliced_wasserstein(in.samples, ref, projections_, proj_gen);
  }

 private:
  int64_t projections_, reference_;
  bool mean_w1_;
};

class PosteriorMeanRmse : public Metric {
 public:
  bool lower_is_better() const override { return true; }
  bool needs_exact_posterior() const override { return true; }
  double compute(const MetricInput& in) const override {
    auto m = in.samples.to(at::kDouble).mean(0).flatten();
    auto t = in.exact->mean().to(at::kDouble).flatten();
    return (m - t).pow(2).mean().sqrt().item<double>();
  }
};

class MseToTruth : public Metric {
 public:
  bool lower_is_better() const override { return true; }
  MetricLevel level() const override { return MetricLevel::PerSample; }
  at::Tensor per_sample(const MetricInput& in, const at::Tensor& images) const override {
    auto d = images.to(at::kDouble).flatten(1) - in.x_true.to(at::kDouble).flatten().unsqueeze(0);
    return d.pow(2).mean(1);
  }
};

std::vector<OptionSpec> sliced_wasserstein_options() {
  return {OptionSpec::integer("projections", 1000, "random unit directions").at_least(1),
          OptionSpec::integer("reference_samples", 2000, "exact-posterior draws (same for every sampler of a measurement)")
              .at_least(2)};
}

MetricRegistrar reg_sw({"sliced_wasserstein",
                        "SW_2 distance between the samples and exact-posterior draws (sqrt of mean W_2^2 "
                        "over random directions)",
                        sliced_wasserstein_options(),
                        [](const Options& o) { return std::make_unique<SlicedWasserstein>(o, false); }});
// The same comparison in the MCGdiff benchmark's published form, so that both can sit side by side in one table.
MetricRegistrar reg_sw_w1({"sliced_wasserstein_w1",
                           "sliced Wasserstein in the MCGdiff benchmark's published form: the mean over random "
                           "directions of W_1 between the projected samples and exact-posterior draws",
                           sliced_wasserstein_options(),
                           [](const Options& o) { return std::make_unique<SlicedWasserstein>(o, true); }});
MetricRegistrar reg_mean({"posterior_mean_rmse",
                          "RMSE per coordinate between the sample mean and the exact posterior mean",
                          {},
                          [](const Options&) { return std::make_unique<PosteriorMeanRmse>(); }});
MetricRegistrar reg_mse({"mse_to_truth", "mean over samples of the per-coordinate squared error to x*", {},
                         [](const Options&) { return std::make_unique<MseToTruth>(); }});

}  // namespace
}  // namespace psbench
