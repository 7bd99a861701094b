// Per-set distribution metrics on network features: fd_fmnist_cnn / kid_fmnist_cnn on psbench's
// classifier, fid / kid on a user-supplied Inception TorchScript file. The sample set is every posterior
// sample of the cell (all measurements pooled); the reference set is the cell's ground-truth images
// (default, the papers' protocol) or a registered reference set (the Fashion-MNIST test split). The
// network and the reference set are registry names (metrics/features.h): nothing here knows a dataset.
#include "core/errors.h"
#include "metrics/features.h"
#include "metrics/metric.h"

namespace psbench {
namespace {

// The reference set of the papers' protocol: the cell's own ground-truth images.
constexpr const char* kGroundTruth = "ground_truth";

class SetDistance : public Metric {
 public:
  SetDistance(const FeatureNetworkSpec& spec, const Options& o, bool is_kid)
      : net_(load_feature_network(spec)), reference_(o.get_string("reference")), kid_(is_kid),
        subsets_(is_kid ? o.get_int("subsets") : 0), subset_size_(is_kid ? o.get_int("subset_size") : 0) {}
  bool lower_is_better() const override { return true; }
  MetricLevel level() const override { return MetricLevel::PerSet; }
  std::string unsupported(const MetricContext& c) const override {
    if (reference_ != kGroundTruth) {
      const auto& set = ReferenceSetRegistry::instance().get(reference_, "reference set");
      if (c.data_shape != set.data_shape)
        return "reference " + reference_ + " needs images " + shape_string(set.data_shape) + " (" + set.description + ")";
    }
    return net_->unsupported(c.data_shape);
  }
  SetValue compute_set(const SetInput& in) const override {
    auto fa = net_->features(at::cat(in.samples).clamp(-1, 1));
    at::Tensor fb = reference_ == kGroundTruth ? net_->features(in.x_true) : reference_features(reference_, *net_);
    SetValue v;
    if (kid_) {
      if (fa.size(0) < 2 || fb.size(0) < 2)
        throw MetricNotApplicable("kid needs at least 2 samples and 2 reference images (got " +
                                 std::to_string(fa.size(0)) + " and " + std::to_string(fb.size(0)) + ")");
      auto k = kid(fa, fb, subsets_, subset_size_, in.seed);
      v.value = k.mean;
      v.spread = k.std;
      if (k.subset_size < 100)
        v.warning = "KID from subsets of " + std::to_string(k.subset_size) + " points: high variance";
    } else {
      if (fa.size(0) < 2 || fb.size(0) < 2)
        throw MetricNotApplicable("the Fréchet distance needs at least 2 samples and 2 reference images (got " +
                                 std::to_string(fa.size(0)) + " and " + std::to_string(fb.size(0)) + ")");
      v.value = frechet_distance(fa, fb);
      v.warning = frechet_sample_warning(fa.size(0), fb.size(0), fa.size(1));
    }
    return v;
  }
  std::map<std::string, std::string> provenance() const override {
    return {{"network", net_->name()}, {"weights", net_->path()}, {"weights_sha256", net_->sha256()},
            {"reference", reference_}};
  }

 private:
  std::shared_ptr<const FeatureNetwork> net_;
  std::string reference_;
  bool kid_;
  int64_t subsets_, subset_size_;
};

std::vector<OptionSpec> set_options(bool fmnist, bool is_kid) {
  std::vector<OptionSpec> v;
  if (fmnist) {
    v.push_back(OptionSpec::text("network_path", "",
                                 "fmnist_cnn weights (default $PSBENCH_MODELS_DIR/fmnist_cnn.pt, else "
                                 "data/models/fmnist_cnn.pt)"));
    // The reference sets of fmnist_cnn's domain (ReferenceSetRegistry names besides ground_truth).
    v.push_back(OptionSpec::choice("reference", kGroundTruth, {kGroundTruth, "fashion_mnist_test"},
                                   "reference set: the cell's x* images, or the 10000 Fashion-MNIST test images"));
  } else {
    v.push_back(OptionSpec::text("network_path", "", "TorchScript Inception file: forward(x [N,3,S,S] in [-1,1]) -> [N, D] (required)"));
    v.push_back(OptionSpec::integer("input_size", 299, "images are resized (bilinear) to this side first; 0 = as is").at_least(0));
    v.push_back(OptionSpec::choice("reference", kGroundTruth, {kGroundTruth}, "reference set: the cell's x* images"));
  }
  if (is_kid) {
    v.push_back(OptionSpec::integer("subsets", 100, "random subsets averaged").at_least(1));
    v.push_back(OptionSpec::integer("subset_size", 1000, "points per subset and set (capped by the set sizes)").at_least(2));
  }
  return v;
}

std::unique_ptr<Metric> make_fmnist(const Options& o, bool is_kid) {
  FeatureNetworkSpec spec;
  spec.path = o.get_string("network_path");
  return std::make_unique<SetDistance>(spec, o, is_kid);
}

std::unique_ptr<Metric> make_inception(const Options& o, bool is_kid, const std::string& name) {
  FeatureNetworkSpec spec;
  spec.kind = "torchscript";
  spec.name = "inception";
  spec.path = o.get_string("network_path");
  spec.input_size = o.get_int("input_size");
  spec.input_channels = 3;
  if (spec.path.empty())
    throw MetricUnavailable(name + ": network_path is required (a TorchScript Inception network; see README, Metrics)");
  return std::make_unique<SetDistance>(spec, o, is_kid);
}

MetricRegistrar reg_fd({"fd_fmnist_cnn",
                        "Fréchet distance on fmnist_cnn's 128-d features between all posterior samples of the cell and "
                        "the reference set (float64, eigen-decomposition square roots); not FID",
                        set_options(true, false), [](const Options& o) { return make_fmnist(o, false); }});
MetricRegistrar reg_kid({"kid_fmnist_cnn",
                         "KID (unbiased MMD^2, kernel (x.y/d+1)^3, random subsets; std over subsets) on fmnist_cnn's "
                         "features between all posterior samples and the reference set",
                         set_options(true, true), [](const Options& o) { return make_fmnist(o, true); }});
MetricRegistrar reg_fid({"fid", "Fréchet distance on a user-supplied Inception TorchScript network's features",
                         set_options(false, false), [](const Options& o) { return make_inception(o, false, "fid"); }});
MetricRegistrar reg_ikid({"kid", "KID on a user-supplied Inception TorchScript network's features",
                          set_options(false, true), [](const Options& o) { return make_inception(o, true, "kid"); }});

}  // namespace
}  // namespace psbench
