// Feature networks (the registry and the generic TorchScript kind), reference sets, and the Fréchet
// distance / KID.
#include "metrics/features.h"
#include "metrics/perceptual.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/errors.h"
#include "core/rng.h"
#include "core/sha256.h"

namespace psbench {

constexpr int64_t kBatch = 500;

std::vector<at::Tensor> batched_no_grad(const at::Tensor& images,
                                        const std::function<std::vector<at::Tensor>(const at::Tensor&)>& f) {
  torch::NoGradGuard no_grad;
  std::vector<std::vector<at::Tensor>> parts;
  for (int64_t i = 0; i < images.size(0); i += kBatch) {
    auto out = f(images.narrow(0, i, std::min(kBatch, images.size(0) - i)));
    if (parts.empty()) parts.resize(out.size());
    for (size_t j = 0; j < out.size(); ++j) parts[j].push_back(out[j]);
  }
  std::vector<at::Tensor> res;
  for (auto& p : parts) res.push_back(at::cat(p));
  return res;
}

void check_weights_file(const std::string& path, const std::string& what, const std::string& hint) {
  std::error_code ec;
  if (path.empty()) throw ConfigError(what + ": no weights file given" + hint);
  if (!std::filesystem::is_regular_file(path, ec)) throw ConfigError(what + ": " + path + ": no such file" + hint);
}

namespace {


class TorchScriptNetwork : public FeatureNetwork {
 public:
  explicit TorchScriptNetwork(const FeatureNetworkSpec& spec) : size_(spec.input_size), channels_(spec.input_channels) {
    check_weights_file(spec.path, "torchscript feature network", " (network_path: a TorchScript file saved with torch.jit.save)");
    try {
      module_ = torch::jit::load(spec.path, at::kCPU);
    } catch (const std::exception& e) {
      throw ConfigError("feature network " + spec.path + ": cannot load as TorchScript: " + first_line(e.what()));
    }
    module_.eval();
    for (const auto& p : module_.parameters()) {
      dtype_ = p.scalar_type();
      break;
    }
    name_ = spec.name.empty() ? std::filesystem::path(spec.path).stem().string() : spec.name;
    path_ = spec.path;
    sha256_ = sha256_file(spec.path);
  }
  std::string unsupported(const std::vector<int64_t>& shape) const override {
    if (shape.size() != 3 || (shape[0] != 1 && shape[0] != 3)) return "network " + name_ + " needs images [C, H, W]";
    if (channels_ == 1 && shape[0] != 1) return "network " + name_ + " takes grey images";
    return "";
  }
  at::Tensor features(const at::Tensor& images) const override {
    return batched_no_grad(images, [&](const at::Tensor& x) {
             auto out = run(x);
             if (!out.isTensor())
               throw ConfigError("feature network " + path_ + ": forward must return a [N, D] tensor of features");
             auto t = out.toTensor();
             if (t.dim() != 2 || t.size(0) != x.size(0))
               throw ConfigError("feature network " + path_ + ": forward returned a tensor that is not [N, D]");
             return std::vector<at::Tensor>{t};
           })[0]
        .to(at::kDouble);
  }
  std::vector<at::Tensor> layers(const at::Tensor& images) const override {
    return batched_no_grad(images, [&](const at::Tensor& x) {
      auto out = run(x);
      std::vector<at::Tensor> res;
      if (out.isTensorList()) res = out.toTensorVector();
      else if (out.isTuple())
        for (const auto& e : out.toTuple()->elements()) res.push_back(e.toTensor());
      else if (out.isList())
        for (const auto& e : out.toListRef()) res.push_back(e.toTensor());
      else
        throw ConfigError("perceptual network " + path_ + ": forward must return a list of [N, C, H, W] layers");
      for (const auto& t : res)
        if (t.dim() != 4 || t.size(0) != x.size(0))
          throw ConfigError("perceptual network " + path_ + ": every layer must be [N, C, H, W]");
      return res;
    });
  }
  // Optional per-layer channel weights of an LPIPS export (method `channel_weights`, a list of [C_l]).
  std::vector<at::Tensor> channel_weights() const {
    auto m = module_.find_method("channel_weights");
    if (!m) return {};
    auto out = (*m)(std::vector<c10::IValue>{});
    std::vector<at::Tensor> res;
    for (const auto& e : out.toListRef()) res.push_back(e.toTensor().to(at::kDouble).flatten());
    return res;
  }

 private:
  c10::IValue run(at::Tensor x) const {
    x = x.to(dtype_);
    if (channels_ == 3 && x.size(1) == 1) x = x.expand({-1, 3, -1, -1}).contiguous();
    if (size_ > 0 && (x.size(2) != size_ || x.size(3) != size_))
      x = at::upsample_bilinear2d(x, {size_, size_}, /*align_corners=*/false);
    try {
      return module_.forward({x});
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      throw ConfigError("feature network " + path_ + ": forward failed: " + first_line(e.what()));
    }
  }
  mutable torch::jit::script::Module module_;
  at::ScalarType dtype_ = at::kFloat;
  int64_t size_, channels_;
};

}  // namespace

at::Tensor FeatureNetwork::logits(const at::Tensor&) const {
  throw std::logic_error("feature network " + name_ + " is not a classifier");
}

std::vector<at::Tensor> torchscript_channel_weights(const FeatureNetwork& net) {
  if (auto* ts = dynamic_cast<const TorchScriptNetwork*>(&net)) return ts->channel_weights();
  return {};
}

namespace {

FeatureNetworkRegistrar reg_torchscript_features(
    {"torchscript", "a TorchScript file: forward(x [N, C, S, S] in [-1, 1]) -> [N, D] features or a list of layers",
     nullptr, [](const FeatureNetworkSpec& spec) { return std::make_shared<TorchScriptNetwork>(spec); }});

}  // namespace

std::shared_ptr<const FeatureNetwork> load_feature_network(const FeatureNetworkSpec& spec_in) {
  FeatureNetworkSpec spec = spec_in;
  const auto& entry = FeatureNetworkRegistry::instance().get(spec.kind, "feature network");
  if (spec.path.empty() && entry.default_path) spec.path = entry.default_path();
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const FeatureNetwork>> cache;
  const std::string key = spec.kind + "|" + spec.path + "|" + spec.name + "|" + std::to_string(spec.input_size) + "|" +
                          std::to_string(spec.input_channels);
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  return cache[key] = entry.make(spec);
}

at::Tensor reference_features(const std::string& name, const FeatureNetwork& net) {
  return ReferenceSetRegistry::instance().get(name, "reference set").features(net);
}

namespace {

at::Tensor covariance(const at::Tensor& f) {
  auto c = f - f.mean(0, true);
  return c.t().matmul(c) / static_cast<double>(f.size(0) - 1);
}

at::Tensor sqrt_psd(const at::Tensor& s) {
  auto [vals, vecs] = at::linalg_eigh(0.5 * (s + s.t()));
  return (vecs * vals.clamp_min(0).sqrt().unsqueeze(0)).matmul(vecs.t());
}

void check_features(const at::Tensor& a, const at::Tensor& b, const char* what, int64_t min_n) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1))
    throw std::invalid_argument(std::string(what) + ": feature sets must be [n, d] and [m, d]");
  if (a.size(0) < min_n || b.size(0) < min_n)
    throw std::invalid_argument(std::string(what) + ": needs at least " + std::to_string(min_n) +
                                " samples per set, got " + std::to_string(a.size(0)) + " and " + std::to_string(b.size(0)));
}

}  // namespace

double frechet_distance_moments(const at::Tensor& mu_a, const at::Tensor& cov_a, const at::Tensor& mu_b,
                                const at::Tensor& cov_b) {
  auto ma = mu_a.to(at::kDouble), mb = mu_b.to(at::kDouble);
  auto sa = cov_a.to(at::kDouble), sb = cov_b.to(at::kDouble);
  auto ha = sqrt_psd(sa);
  auto m = ha.matmul(sb).matmul(ha);
  auto cross = at::linalg_eigvalsh(0.5 * (m + m.t())).clamp_min(0).sqrt().sum();
  auto d = (ma - mb).pow(2).sum() + sa.trace() + sb.trace() - 2 * cross;
  // Round-off can leave a tiny negative value for identical sets: the distance is non-negative.
  return std::max(0.0, d.item<double>());
}

double frechet_distance(const at::Tensor& feat_a, const at::Tensor& feat_b) {
  check_features(feat_a, feat_b, "frechet_distance", 2);
  auto a = feat_a.to(at::kDouble), b = feat_b.to(at::kDouble);
  return frechet_distance_moments(a.mean(0), covariance(a), b.mean(0), covariance(b));
}

KidValue kid(const at::Tensor& feat_a, const at::Tensor& feat_b, int64_t subsets, int64_t subset_size, uint64_t seed) {
  check_features(feat_a, feat_b, "kid", 2);
  if (subsets < 1 || subset_size < 2) throw std::invalid_argument("kid: needs subsets >= 1 and subset_size >= 2");
  auto a = feat_a.to(at::kDouble), b = feat_b.to(at::kDouble);
  const int64_t s = std::min({subset_size, a.size(0), b.size(0)});
  const double d = static_cast<double>(a.size(1));
  auto gen = make_generator(seed);
  auto kernel = [d](const at::Tensor& x, const at::Tensor& y) { return (x.matmul(y.t()) / d + 1).pow(3); };
  std::vector<double> values;
  for (int64_t i = 0; i < subsets; ++i) {
    auto x = a.index_select(0, at::randperm(a.size(0), gen, at::TensorOptions().dtype(at::kLong)).narrow(0, 0, s));
    auto y = b.index_select(0, at::randperm(b.size(0), gen, at::TensorOptions().dtype(at::kLong)).narrow(0, 0, s));
    auto kxx = kernel(x, x), kyy = kernel(y, y), kxy = kernel(x, y);
    const double ss = static_cast<double>(s);
    const double mmd = ((kxx.sum() - kxx.trace()) / (ss * (ss - 1)) + (kyy.sum() - kyy.trace()) / (ss * (ss - 1)) -
                        2 * kxy.sum() / (ss * ss))
                           .item<double>();
    values.push_back(mmd);
  }
  auto v = at::tensor(values, at::TensorOptions().dtype(at::kDouble));
  KidValue r;
  r.mean = v.mean().item<double>();
  r.std = subsets > 1 ? v.std().item<double>() : 0.0;
  r.subsets = subsets;
  r.subset_size = s;
  return r;
}

std::string frechet_sample_warning(int64_t n_a, int64_t n_b, int64_t dim) {
  const int64_t n = std::min(n_a, n_b);
  if (n >= 2 * dim) return "";
  return "Fréchet distance from " + std::to_string(n) + " samples, fewer than twice the " + std::to_string(dim) +
         " feature dimensions: the covariance estimates are rank-deficient and the value is biased upwards; compare "
         "only at equal sample counts";
}

}  // namespace psbench
