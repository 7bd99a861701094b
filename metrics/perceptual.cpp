// The LPIPS-formula perceptual distance: `perceptual_fmnist_cnn` on psbench's classifier (channel
// weights 1), `lpips_alex` / `lpips_vgg` on user-supplied TorchScript exports of the lpips package
// (tools/export_lpips.py), and the mean pairwise distance among posterior samples (diversity).
#include "metrics/perceptual.h"

#include "core/errors.h"
#include "metrics/metric.h"

namespace psbench {

std::vector<at::Tensor> normalized_layers(const FeatureNetwork& net, const at::Tensor& images) {
  std::vector<at::Tensor> out;
  for (auto& l : net.layers(images)) {
    auto f = l.to(at::kDouble);
    out.push_back(f / (f.pow(2).sum(1, true).sqrt() + 1e-10));
  }
  return out;
}

at::Tensor perceptual_distance_layers(const std::vector<at::Tensor>& la, const std::vector<at::Tensor>& lb,
                                      const std::vector<at::Tensor>& weights) {
  if (la.size() != lb.size() || la.empty()) throw std::invalid_argument("perceptual distance: layer lists differ");
  if (!weights.empty() && weights.size() != la.size())
    throw std::invalid_argument("perceptual distance: " + std::to_string(weights.size()) + " weight vectors for " +
                                std::to_string(la.size()) + " layers");
  at::Tensor total;
  for (size_t l = 0; l < la.size(); ++l) {
    auto d = (la[l] - lb[l]).pow(2);
    if (!weights.empty()) d = d * weights[l].view({1, -1, 1, 1});
    auto v = d.sum(1).mean({1, 2});
    total = l == 0 ? v : total + v;
  }
  return total;
}

at::Tensor perceptual_distance(const FeatureNetwork& net, const at::Tensor& a, const at::Tensor& b,
                               const std::vector<at::Tensor>& weights) {
  return perceptual_distance_layers(normalized_layers(net, a), normalized_layers(net, b), weights);
}

double mean_pairwise_perceptual_distance(const FeatureNetwork& net, const at::Tensor& samples,
                                         const std::vector<at::Tensor>& weights) {
  const int64_t k = samples.size(0);
  if (k < 2) throw std::runtime_error("mean pairwise perceptual distance needs at least 2 samples, got " + std::to_string(k));
  auto layers = normalized_layers(net, samples);
  double sum = 0;
  for (int64_t i = 0; i + 1 < k; ++i) {
    std::vector<at::Tensor> a, b;
    for (const auto& l : layers) {
      a.push_back(l.narrow(0, i, 1));
      b.push_back(l.narrow(0, i + 1, k - i - 1));
    }
    sum += perceptual_distance_layers(b, a, weights).sum().item<double>();
  }
  return sum / (0.5 * static_cast<double>(k) * static_cast<double>(k - 1));
}

namespace {

struct NetworkChoice {
  FeatureNetworkSpec spec;
  bool lpips = false;  // real LPIPS: channel weights required from the export
};

std::shared_ptr<const FeatureNetwork> load_checked(const NetworkChoice& c, std::vector<at::Tensor>& weights,
                                                   const std::string& metric) {
  auto net = load_feature_network(c.spec);
  if (c.lpips) {
    weights = torchscript_channel_weights(*net);
    if (weights.empty())
      throw ConfigError(metric + ": " + net->path() + " has no channel_weights() method (export it with tools/export_lpips.py)");
    for (const auto& w : weights)
      if ((w < 0).any().item<bool>()) throw ConfigError(metric + ": " + net->path() + ": negative channel weights");
  }
  return net;
}

std::map<std::string, std::string> net_provenance(const FeatureNetwork& net) {
  return {{"network", net.name()}, {"weights", net.path()}, {"weights_sha256", net.sha256()}};
}

// Per sample: d(x_k, x*) (lower is better).
class PerceptualToTruth : public Metric {
 public:
  PerceptualToTruth(const NetworkChoice& c, const std::string& name, bool best)
      : net_(load_checked(c, weights_, name)), best_(best) {}
  bool lower_is_better() const override { return true; }
  MetricLevel level() const override { return MetricLevel::PerSample; }
  bool best_of_k() const override { return best_; }
  std::string unsupported(const MetricContext& c) const override { return net_->unsupported(c.data_shape); }
  at::Tensor per_sample(const MetricInput& in, const at::Tensor& images) const override {
    return perceptual_distance(*net_, images.clamp(-1, 1), in.x_true.unsqueeze(0), weights_);
  }
  std::map<std::string, std::string> provenance() const override { return net_provenance(*net_); }

 private:
  std::vector<at::Tensor> weights_;
  std::shared_ptr<const FeatureNetwork> net_;
  bool best_;
};

// Per measurement: mean pairwise distance among the K samples (diversity; 0 for identical samples).
class PairwisePerceptual : public Metric {
 public:
  PairwisePerceptual(const NetworkChoice& c, const std::string& name) : net_(load_checked(c, weights_, name)) {}
  bool lower_is_better() const override { return false; }
  std::string unsupported(const MetricContext& c) const override { return net_->unsupported(c.data_shape); }
  std::string sampler_unsupported(const MetricContext& c) const override { return at_least_two_samples(c); }
  double compute(const MetricInput& in) const override {
    return mean_pairwise_perceptual_distance(*net_, in.samples.clamp(-1, 1), weights_);
  }
  std::map<std::string, std::string> provenance() const override { return net_provenance(*net_); }

 private:
  std::vector<at::Tensor> weights_;
  std::shared_ptr<const FeatureNetwork> net_;
};

NetworkChoice fmnist_choice(const Options& o) {
  NetworkChoice c;
  c.spec.path = o.get_string("network_path");
  return c;
}

NetworkChoice lpips_choice(const Options& o, const std::string& metric, const std::string& net_name) {
  NetworkChoice c;
  c.lpips = true;
  c.spec.kind = "torchscript";
  c.spec.name = net_name;
  c.spec.path = o.get_string("network_path");
  c.spec.input_size = o.get_int("input_size");
  c.spec.input_channels = 3;
  if (c.spec.path.empty())
    throw MetricUnavailable(metric + ": network_path is required: a TorchScript export of the lpips package's " +
                            net_name + " network with its weights (tools/export_lpips.py)");
  return c;
}

OptionSpec fmnist_path_option() {
  return OptionSpec::text("network_path", "",
                          "fmnist_cnn weights (default $PSBENCH_MODELS_DIR/fmnist_cnn.pt, else data/models/fmnist_cnn.pt)");
}
std::vector<OptionSpec> lpips_options() {
  return {OptionSpec::text("network_path", "", "TorchScript export from tools/export_lpips.py (required)"),
          OptionSpec::integer("input_size", 64, "images are resized (bilinear) to this side first; 0 = as is").at_least(0),
          OptionSpec::boolean("best_of_k", false, "also store the best of K against x* as <name>@best_of_k")};
}

MetricRegistrar reg_perc({"perceptual_fmnist_cnn",
                          "LPIPS formula (unit-normalised channel features, squared difference, channel weights 1, "
                          "spatial mean, sum over layers) on fmnist_cnn's three conv layers, sample vs x*; not LPIPS",
                          {fmnist_path_option(),
                           OptionSpec::boolean("best_of_k", false, "also store the best of K against x* as <name>@best_of_k")},
                          [](const Options& o) {
                            return std::make_unique<PerceptualToTruth>(fmnist_choice(o), "perceptual_fmnist_cnn",
                                                                       o.get_bool("best_of_k"));
                          }});
MetricRegistrar reg_div({"diversity_perceptual_fmnist_cnn",
                         "mean pairwise perceptual_fmnist_cnn distance among the K samples of a measurement",
                         {fmnist_path_option()},
                         [](const Options& o) {
                           return std::make_unique<PairwisePerceptual>(fmnist_choice(o), "diversity_perceptual_fmnist_cnn");
                         }});
MetricRegistrar reg_alex({"lpips_alex", "LPIPS with a user-supplied AlexNet + LPIPS weights export, sample vs x*",
                          lpips_options(), [](const Options& o) {
                            return std::make_unique<PerceptualToTruth>(lpips_choice(o, "lpips_alex", "alex"), "lpips_alex",
                                                                       o.get_bool("best_of_k"));
                          }});
MetricRegistrar reg_vgg({"lpips_vgg", "LPIPS with a user-supplied VGG16 + LPIPS weights export, sample vs x*",
                         lpips_options(), [](const Options& o) {
                           return std::make_unique<PerceptualToTruth>(lpips_choice(o, "lpips_vgg", "vgg"), "lpips_vgg",
                                                                      o.get_bool("best_of_k"));
                         }});

}  // namespace
}  // namespace psbench
