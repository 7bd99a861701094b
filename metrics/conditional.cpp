// Conditional checks of posterior samples: data consistency with y and the classifier's agreement with
// the true label.
#include <cmath>

#include "core/errors.h"
#include "metrics/features.h"
#include "metrics/metric.h"
#include "operators/operator.h"

namespace psbench {
namespace {

// ||S (y - A(x))|| / (sigma_y sqrt(m)) over the operator's support S (the entries of y that depend on x;
// inpainting: the observed pixels), m = |S|: about 1 when the residual looks like the noise (the true x*
// gives a chi_m / sqrt(m) draw); much larger means the sample ignores y, much smaller over-fits it.
// Counting entries outside S (pure noise, matched by every sample alike) would pull every sample towards
// the target: with a fraction p of pixels observed the whole-image value is sqrt(p DC^2 + 1 - p), so a
// sample at DC = 3 on 20% observed pixels would show 1.6.
class DataConsistency : public Metric {
 public:
  bool lower_is_better() const override { return true; }
  double target(int64_t) const override { return 1.0; }
  MetricLevel level() const override { return MetricLevel::PerSample; }
  at::Tensor per_sample(const MetricInput& in, const at::Tensor& images) const override {
    if (!in.op || !(in.sigma_y > 0)) throw std::runtime_error("data_consistency needs the operator and sigma_y > 0");
    at::NoGradGuard no_grad;
    auto r = (in.op->forward(images) - in.y.unsqueeze(0)).to(at::kDouble);
    double m = static_cast<double>(r[0].numel());
    if (const auto support = in.op->output_support(); support.defined()) {
      const auto s = support.to(r.device(), at::kDouble);
      r = r * s.unsqueeze(0);
      m = s.sum().item<double>();
    }
    return r.flatten(1).norm(2, 1) / (in.sigma_y * std::sqrt(m));
  }
};

// 1 when the classifier's most probable class of the sample is x*'s label, else 0 (mean = accuracy).
class ClassifierAccuracy : public Metric {
 public:
  explicit ClassifierAccuracy(const Options& o) {
    FeatureNetworkSpec spec;
    spec.path = o.get_string("network_path");
    net_ = load_feature_network(spec);
  }
  bool lower_is_better() const override { return false; }
  MetricLevel level() const override { return MetricLevel::PerSample; }
  std::string unsupported(const MetricContext& c) const override {
    if (!c.has_labels) return "needs a dataset with class labels (fashion_mnist)";
    return net_->unsupported(c.data_shape);
  }
  at::Tensor per_sample(const MetricInput& in, const at::Tensor& images) const override {
    if (in.label < 0) throw std::runtime_error("classifier_accuracy_fmnist_cnn: the measurement has no label");
    return net_->logits(images.clamp(-1, 1)).argmax(1).eq(in.label).to(at::kDouble);
  }
  std::map<std::string, std::string> provenance() const override {
    return {{"network", net_->name()}, {"weights", net_->path()}, {"weights_sha256", net_->sha256()}};
  }

 private:
  std::shared_ptr<const FeatureNetwork> net_;
};

MetricRegistrar reg_dc({"data_consistency",
                        "||y - A(x)|| / (sigma_y sqrt(m)) over the m entries of y that depend on x (inpainting: "
                        "observed pixels) per sample, mean over samples; about 1 for a calibrated sampler (target 1, "
                        "not a direction)",
                        {}, [](const Options&) { return std::make_unique<DataConsistency>(); }});
MetricRegistrar reg_acc({"classifier_accuracy_fmnist_cnn",
                         "fraction of samples that fmnist_cnn classifies as x*'s true label",
                         {OptionSpec::text("network_path", "",
                                           "fmnist_cnn weights (default $PSBENCH_MODELS_DIR/fmnist_cnn.pt, else "
                                           "data/models/fmnist_cnn.pt)")},
                         [](const Options& o) { return std::make_unique<ClassifierAccuracy>(o); }});

}  // namespace
}  // namespace psbench
