#include "priors/neural.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/errors.h"
#include "core/sha256.h"
#include "priors/ode_generator.h"

namespace psbench {

std::string resolve_model_path(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) throw ConfigError("model path is empty");
  if (fs::is_regular_file(path)) return path;
  const fs::path p(path);
  if (p.is_relative()) {
    const fs::path in_tree = fs::path(PSBENCH_SOURCE_DIR) / p;
    if (fs::is_regular_file(in_tree)) return in_tree.string();
    throw ConfigError("model file '" + path + "' not found (looked in the working directory and in " +
                      std::string(PSBENCH_SOURCE_DIR) + ")");
  }
  throw ConfigError("model file '" + path + "' not found");
}

c10::Device parse_device(const std::string& device) {
  if (device == "cpu") return c10::Device(c10::kCPU);
  if (device == "cuda") {
    if (!at::hasCUDA()) throw ConfigError("device 'cuda' asked for, but this LibTorch build has no CUDA device");
    return c10::Device(c10::kCUDA);
  }
  throw ConfigError("device must be cpu or cuda, got '" + device + "'");
}

namespace {
void freeze(torch::nn::Module& m) {
  m.eval();
  for (auto& p : m.parameters()) p.set_requires_grad(false);
}
}  // namespace

NetworkDenoiser::NetworkDenoiser(nn::Preconditioned model, c10::Device device)
    : model_(std::move(model)), device_(device) {
  model_->to(device_);
  freeze(*model_);
}

at::Tensor NetworkDenoiser::denoise(const at::Tensor& x, const at::Tensor& sigma) const {
  return model_->forward(x.to(device_), sigma.to(device_)).to(x.device(), x.scalar_type());
}

MultistepConsistency::MultistepConsistency(Shape data_shape, int64_t steps, double sigma_min, double sigma_max)
    : shape_(std::move(data_shape)), steps_(steps), sigma_min_(sigma_min) {
  if (steps_ < 1) throw ConfigError("consistency generator: steps must be >= 1");
  auto grid = karras_sigmas(steps_ + 1, sigma_min, sigma_max, 7.0);  // sigma_max ... sigma_min, 0
  times_.assign(grid.begin(), grid.begin() + steps_);
}

Shape MultistepConsistency::latent_shape() const {
  Shape s = shape_;
  s[0] *= steps_;
  return s;
}

at::Tensor MultistepConsistency::generate(const at::Tensor& z) const {
  const int64_t b = z.size(0), c = shape_[0];
  auto opts = z.options();
  auto x = consistency(times_[0] * z.slice(1, 0, c), at::full({b}, times_[0], opts));
  for (int64_t i = 1; i < steps_; ++i) {
    const double t = times_[i];
    auto xt = x + std::sqrt(t * t - sigma_min_ * sigma_min_) * z.slice(1, i * c, (i + 1) * c);
    x = consistency(xt, at::full({b}, t, opts));
  }
  return x;
}

namespace {
const nn::Preconditioned& consistency_model(const nn::Preconditioned& model) {
  if (model->precond().kind != nn::Parameterization::Consistency)
    throw ConfigError("consistency generator: the model file holds an EDM denoiser, not a consistency model");
  return model;
}
}  // namespace

ConsistencyGenerator::ConsistencyGenerator(nn::Preconditioned model, c10::Device device, Shape data_shape,
                                           int64_t steps)
    : MultistepConsistency(std::move(data_shape), steps, consistency_model(model)->precond().sigma_min,
                           model->precond().sigma_max),
      model_(std::move(model)),
      device_(device) {
  model_->to(device_);
  freeze(*model_);
}

at::Tensor ConsistencyGenerator::consistency(const at::Tensor& x, const at::Tensor& sigma) const {
  return model_->forward(x.to(device_), sigma.to(device_)).to(x.device(), x.scalar_type());
}

TorchScriptConventions TorchScriptConventions::load(const std::string& yaml_path) {
  if (!std::filesystem::is_regular_file(yaml_path))
    throw ConfigError("TorchScript conventions file '" + yaml_path +
                      "' not found (write it next to the model: kind, shape, sigma range...; see README)");
  YAML::Node n;
  try {
    n = YAML::LoadFile(yaml_path);
  } catch (const YAML::Exception& e) {
    throw yaml_error("'" + yaml_path + "'", "not valid YAML", e);
  }
  const YAML::Node& cn = n;
  auto fail = [&](const std::string& what) { return ConfigError("'" + yaml_path + "': " + what); };
  if (!cn.IsMap()) throw fail("expected a map of conventions");
  check_yaml_document(cn, yaml_path);
  static const std::vector<std::string> known{"kind", "shape", "latent_shape", "sigma_min", "sigma_max",
                                              "sigma_data", "value_range", "evaluations_per_call"};
  for (const auto& kv : cn) {
    const auto key = kv.first.Scalar();  // check_yaml_document refused keys that are not scalars
    if (std::find(known.begin(), known.end(), key) == known.end()) throw fail("unknown key '" + key + "'");
  }
  // Each value read through yaml-cpp's conversion; a value of the wrong shape (a map for a number, a number
  // too large for int64) is refused naming its key and what it holds.
  auto get = [&](const char* key, auto as) {
    using T = decltype(as);
    try {
      return cn[key].template as<T>();
    } catch (const YAML::Exception&) {
      const YAML::Node v = cn[key];
      throw fail(std::string(key) + ": " + (v.IsScalar() ? "'" + v.Scalar() + "'" : std::string("this value")) +
                 " is not " + (std::is_same_v<T, std::string> ? "a name"
                               : std::is_same_v<T, double>    ? "a number"
                               : std::is_same_v<T, int64_t>   ? "an integer"
                               : std::is_same_v<T, std::vector<int64_t>> ? "a list of integers"
                                                                          : "a list of numbers"));
    }
  };
  TorchScriptConventions c;
  if (!cn["kind"]) throw fail("missing 'kind' (denoiser, generator or consistency)");
  c.kind = get("kind", std::string());
  if (c.kind != "denoiser" && c.kind != "generator" && c.kind != "consistency")
    throw fail("kind must be denoiser, generator or consistency, got '" + c.kind + "'");
  if (!cn["shape"]) throw fail("missing 'shape' [C, H, W]");
  c.shape = get("shape", std::vector<int64_t>());
  c.latent_shape = cn["latent_shape"] ? get("latent_shape", std::vector<int64_t>()) : c.shape;
  // A sample larger than 2^28 numbers (1 GiB of float32) is no image psbench can batch; refusing it here keeps a
  // mistyped shape from becoming an allocation failure at the first network call.
  constexpr int64_t kMaxSampleNumel = int64_t{1} << 28;
  for (const auto* s : {&c.shape, &c.latent_shape}) {
    if (s->empty()) throw fail("shapes must have at least one entry");
    int64_t numel = 1;
    for (auto v : *s) {
      if (v < 1) throw fail("shapes must have positive entries");
      if (v > kMaxSampleNumel / numel)
        throw fail("a shape holds more than 2^28 numbers per sample (" + std::to_string(v) + " after " +
                   std::to_string(numel) + ")");
      numel *= v;
    }
  }
  if (cn["sigma_min"]) c.sigma_min = get("sigma_min", double());
  if (cn["sigma_max"]) c.sigma_max = get("sigma_max", double());
  if (cn["sigma_data"]) c.sigma_data = get("sigma_data", double());
  if (cn["value_range"]) {
    auto r = get("value_range", std::vector<double>());
    if (r.size() != 2 || !(r[1] > r[0])) throw fail("value_range must be [lo, hi] with hi > lo");
    c.value_lo = r[0];
    c.value_hi = r[1];
  }
  if (cn["evaluations_per_call"]) c.evaluations_per_call = get("evaluations_per_call", int64_t());
  for (const double v : {c.sigma_min, c.sigma_max, c.sigma_data, c.value_lo, c.value_hi})
    if (!std::isfinite(v)) throw fail("sigma_min, sigma_max, sigma_data and value_range must be finite");
  if (!(c.sigma_min > 0 && c.sigma_max > c.sigma_min && c.sigma_data > 0))
    throw fail("need 0 < sigma_min < sigma_max and sigma_data > 0");
  if (c.evaluations_per_call < 1) throw fail("evaluations_per_call must be >= 1");
  // The sigmas are given in the network's value units; psbench works in [-1, 1].
  const double a = (c.value_hi - c.value_lo) / 2.0;
  c.sigma_min /= a;
  c.sigma_max /= a;
  c.sigma_data /= a;
  return c;
}

torch::jit::Module load_torchscript(const std::string& path, const std::string& kind, c10::Device device) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, device);
  } catch (const std::exception& e) {
    // Not only c10::Error: a damaged code/ entry of the archive fails in TorchScript's parser, whose
    // ErrorReport is a plain std::exception quoting the source over several lines.
    throw ConfigError("'" + path + "' is not a loadable TorchScript file (" + first_line(e.what()).substr(0, 200) +
                      ")");
  }
  auto method = m.find_method("forward");
  if (!method) throw ConfigError("TorchScript file '" + path + "' has no forward method");
  const size_t args = method->function().getSchema().arguments().size() - 1;  // without self
  const bool takes_sigma = kind == "denoiser" || kind == "consistency";
  const size_t want = takes_sigma ? 2 : 1;
  if (args != want) {
    std::ostringstream schema;
    schema << method->function().getSchema();
    throw ConfigError("TorchScript file '" + path + "': a " + kind + " needs forward(" +
                      (takes_sigma ? "x, sigma" : "z") + "), but its forward takes " + std::to_string(args) +
                      " argument(s): " + schema.str());
  }
  m.eval();
  return m;
}

TorchScriptDenoiser::TorchScriptDenoiser(const std::string& path, const TorchScriptConventions& conv, c10::Device device)
    : module_(load_torchscript(path, "denoiser", device)), conv_(conv), device_(device) {}

namespace {
// forward(x, sigma) of a denoiser or consistency function exported in its own value units: psbench's [-1, 1]
// data (x) and noise levels scale by a = (hi - lo) / 2 and shift by b = (hi + lo) / 2, and the output back.
at::Tensor forward_x_sigma(torch::jit::Module& module, const TorchScriptConventions& conv, c10::Device device,
                           const at::Tensor& x, const at::Tensor& sigma) {
  const double a = (conv.value_hi - conv.value_lo) / 2.0, b = (conv.value_hi + conv.value_lo) / 2.0;
  auto xn = (x.to(device, at::kFloat) * a + b);
  auto sn = sigma.to(device, at::kFloat) * a;
  auto out = module.forward({xn, sn});
  if (!out.isTensor()) throw std::runtime_error("TorchScript " + conv.kind + " returned a non-tensor");
  auto d = out.toTensor();
  if (d.sizes() != x.sizes())
    throw std::runtime_error("TorchScript " + conv.kind + " returned shape " + shape_string(d.sizes().vec()) +
                             " for input " + shape_string(x.sizes().vec()));
  return ((d - b) / a).to(x.device(), x.scalar_type());
}
}  // namespace

at::Tensor TorchScriptDenoiser::denoise(const at::Tensor& x, const at::Tensor& sigma) const {
  return forward_x_sigma(module_, conv_, device_, x, sigma);
}

TorchScriptConsistency::TorchScriptConsistency(const std::string& path, const TorchScriptConventions& conv,
                                               c10::Device device, int64_t steps)
    : MultistepConsistency(conv.shape, steps, conv.sigma_min, conv.sigma_max),
      module_(load_torchscript(path, "consistency", device)),
      conv_(conv),
      device_(device) {}

at::Tensor TorchScriptConsistency::consistency(const at::Tensor& x, const at::Tensor& sigma) const {
  return forward_x_sigma(module_, conv_, device_, x, sigma);
}

TorchScriptGenerator::TorchScriptGenerator(const std::string& path, const TorchScriptConventions& conv, c10::Device device)
    : module_(load_torchscript(path, "generator", device)), conv_(conv), device_(device) {}

at::Tensor TorchScriptGenerator::generate(const at::Tensor& z) const {
  const double a = (conv_.value_hi - conv_.value_lo) / 2.0, b = (conv_.value_hi + conv_.value_lo) / 2.0;
  auto out = module_.forward({z.to(device_, at::kFloat)});
  if (!out.isTensor()) throw std::runtime_error("TorchScript generator returned a non-tensor");
  auto x = out.toTensor();
  std::vector<int64_t> want{z.size(0)};
  want.insert(want.end(), conv_.shape.begin(), conv_.shape.end());
  if (x.sizes() != at::IntArrayRef(want))
    throw std::runtime_error("TorchScript generator returned shape " + shape_string(x.sizes().vec()) +
                             ", expected " + shape_string(want));
  return ((x - b) / a).to(z.device(), z.scalar_type());
}

}  // namespace psbench
