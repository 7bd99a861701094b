// Diversity metrics over the K samples of a measurement: pixel_std (mean and map), vendi_fmnist_cnn,
// diversity_score_fmnist_cnn (mean pairwise perceptual distance: metrics/perceptual.cpp).
#include "metrics/diversity.h"

#include <cmath>
#include <limits>

#include "core/errors.h"
#include "metrics/features.h"
#include "metrics/metric.h"

namespace psbench {

at::Tensor pixel_std_map(const at::Tensor& samples) {
  if (samples.size(0) < 2) throw std::runtime_error("pixel_std needs at least 2 samples, got " + std::to_string(samples.size(0)));
  return samples.to(at::kDouble).std(0, /*unbiased=*/true);
}

double vendi_score(const at::Tensor& features) {
  auto f = features.to(at::kDouble).flatten(1);
  const int64_t k = f.size(0);
  if (k < 1) throw std::invalid_argument("vendi_score: no samples");
  auto norms = f.norm(2, 1, true);
  auto u = f / norms.clamp_min(1e-300);
  auto s = u.matmul(u.t());
  s.diagonal().fill_(1.0);
  auto lam = at::linalg_eigvalsh(s / static_cast<double>(k)).clamp_min(0);
  auto pos = lam.masked_select(lam > 1e-15);
  return std::exp(-(pos * pos.log()).sum().item<double>());
}

double diversity_score(const at::Tensor& features, int64_t neighbours) {
  auto f = features.to(at::kDouble).flatten(1);
  const int64_t k = f.size(0);
  if (k < 2) throw std::runtime_error("diversity_score needs at least 2 samples, got " + std::to_string(k));
  const int64_t n = std::min(neighbours, k - 1);
  auto dist = at::cdist(f, f);
  // Exclude self from the neighbours; a stable sort orders ties by index.
  auto masked = dist.clone();
  masked.fill_diagonal_(std::numeric_limits<double>::infinity());
  auto order = std::get<1>(masked.sort(/*stable=*/true, /*dim=*/1, /*descending=*/false)).narrow(1, 0, n);
  const double intra = dist.gather(1, order).mean().item<double>();
  auto members = at::cat({at::arange(k, at::kLong).unsqueeze(1), order}, 1);  // [K, n + 1]
  auto centroids = f.index_select(0, members.flatten()).view({k, n + 1, -1}).mean(1);
  auto cd = at::cdist(centroids, centroids);
  const double inter = cd.sum().item<double>() / (static_cast<double>(k) * static_cast<double>(k - 1));
  if (inter == 0) return 0.0;
  const double mean_pair = dist.sum().item<double>() / (static_cast<double>(k) * static_cast<double>(k - 1));
  return inter / std::max(intra, 1e-12 * mean_pair);
}

namespace {

class PixelStd : public Metric {
 public:
  bool lower_is_better() const override { return false; }
  std::string sampler_unsupported(const MetricContext& c) const override { return at_least_two_samples(c); }
  double compute(const MetricInput& in) const override { return pixel_std_map(in.samples).mean().item<double>(); }
  std::map<std::string, at::Tensor> extra_arrays(const MetricInput& in) const override {
    return {{"map", pixel_std_map(in.samples).to(at::kFloat)}};
  }
};

class FeatureDiversity : public Metric {
 public:
  FeatureDiversity(const Options& o, bool vendi) : vendi_(vendi) {
    FeatureNetworkSpec spec;
    spec.path = o.get_string("network_path");
    net_ = load_feature_network(spec);
  }
  bool lower_is_better() const override { return false; }
  std::string unsupported(const MetricContext& c) const override { return net_->unsupported(c.data_shape); }
  std::string sampler_unsupported(const MetricContext& c) const override { return at_least_two_samples(c); }
  double compute(const MetricInput& in) const override {
    auto f = net_->features(in.samples.clamp(-1, 1));
    return vendi_ ? vendi_score(f) : diversity_score(f);
  }
  std::map<std::string, std::string> provenance() const override {
    return {{"network", net_->name()}, {"weights", net_->path()}, {"weights_sha256", net_->sha256()}};
  }

 private:
  bool vendi_;
  std::shared_ptr<const FeatureNetwork> net_;
};

std::vector<OptionSpec> net_options() {
  return {OptionSpec::text("network_path", "",
                           "fmnist_cnn weights (default $PSBENCH_MODELS_DIR/fmnist_cnn.pt, else data/models/fmnist_cnn.pt)")};
}

MetricRegistrar reg_std({"pixel_std",
                         "mean over pixels of the per-pixel standard deviation of the K samples (the map is stored as "
                         "metric_arrays/pixel_std/map/mNNNN)",
                         {}, [](const Options&) { return std::make_unique<PixelStd>(); }});
MetricRegistrar reg_vendi({"vendi_fmnist_cnn",
                           "Vendi score (exp of the entropy of the cosine-similarity matrix / K) of the K samples' "
                           "fmnist_cnn features; 1 = identical samples, K = orthogonal features",
                           net_options(), [](const Options& o) { return std::make_unique<FeatureDiversity>(o, true); }});
MetricRegistrar reg_ds({"diversity_score_fmnist_cnn",
                        "Diversity Score (inter/intra distance ratio of 6-nearest-neighbour clusters of the K samples' "
                        "fmnist_cnn features; protocol in metrics/diversity.h and README)",
                        net_options(), [](const Options& o) { return std::make_unique<FeatureDiversity>(o, false); }});

}  // namespace
}  // namespace psbench
