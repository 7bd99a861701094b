#include "nn/edm.h"

#include <cmath>
#include <filesystem>

#include "core/errors.h"

namespace psbench::nn {

std::string to_string(Parameterization p) { return p == Parameterization::Denoiser ? "edm_denoiser" : "consistency"; }

PreconditionedImpl::PreconditionedImpl(UNetConfig unet, PrecondConfig precond) : precond_(precond) {
  net_ = register_module("net", UNet(std::move(unet)));
}

torch::Tensor PreconditionedImpl::forward(const torch::Tensor& x, const torch::Tensor& sigma) {
  const auto in_dtype = x.scalar_type();
  auto xf = x.to(torch::kFloat);
  auto s = sigma.to(torch::kFloat).reshape({-1, 1, 1, 1});
  const double sd = precond_.sigma_data, sd2 = sd * sd;
  auto denom = torch::sqrt(s * s + sd2);
  torch::Tensor c_skip, c_out;
  if (precond_.kind == Parameterization::Denoiser) {
    c_skip = sd2 / (s * s + sd2);
    c_out = s * sd / denom;
  } else {
    auto shifted = s - precond_.sigma_min;
    c_skip = sd2 / (shifted * shifted + sd2);
    c_out = sd * shifted / denom;
  }
  auto c_in = 1.0 / denom;
  auto c_noise = torch::log(sigma.to(torch::kFloat).reshape({-1})) / 4.0;
  auto out = c_skip * xf + c_out * net_(c_in * xf, c_noise);
  return out.to(in_dtype);
}

namespace {

std::string read_string(torch::serialize::InputArchive& ar, const std::string& key, const std::string& path) {
  c10::IValue v;
  if (!ar.try_read(key, v) || !v.isString())
    throw ConfigError("model file '" + path + "' has no '" + key + "' entry: not a psbench model file");
  return v.toStringRef();
}

double read_double(torch::serialize::InputArchive& ar, const std::string& key, const std::string& path) {
  c10::IValue v;
  if (!ar.try_read(key, v) || !v.isDouble())
    throw ConfigError("model file '" + path + "' has no numeric '" + key + "' entry");
  return v.toDouble();
}

}  // namespace

void save_model(const std::string& path, Preconditioned& model, const std::map<std::string, std::string>& meta) {
  torch::serialize::OutputArchive ar;
  ar.write("psbench_model", c10::IValue(to_string(model->precond().kind)));
  ar.write("architecture", c10::IValue(model->unet_config().to_string()));
  ar.write("sigma_data", c10::IValue(model->precond().sigma_data));
  ar.write("sigma_min", c10::IValue(model->precond().sigma_min));
  ar.write("sigma_max", c10::IValue(model->precond().sigma_max));
  c10::Dict<std::string, std::string> m;
  for (const auto& [k, v] : meta) m.insert(k, v);
  ar.write("meta", c10::IValue(m));
  torch::serialize::OutputArchive weights;
  model->save(weights);
  ar.write("weights", weights);
  const std::string tmp = path + ".tmp";
  ar.save_to(tmp);
  std::filesystem::rename(tmp, path);
}

ModelFile load_model(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw ConfigError("model file '" + path + "' does not exist");
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path);
  } catch (const std::exception& e) {
    // The archive is TorchScript underneath: a damaged entry can fail in its parser (a plain std::exception).
    throw ConfigError("model file '" + path + "' is not a readable LibTorch archive (" +
                      first_line(e.what()).substr(0, 200) + ")");
  }
  const std::string kind = read_string(ar, "psbench_model", path);
  PrecondConfig pc;
  if (kind == "edm_denoiser") pc.kind = Parameterization::Denoiser;
  else if (kind == "consistency") pc.kind = Parameterization::Consistency;
  else throw ConfigError("model file '" + path + "' holds an unknown model kind '" + kind + "'");
  pc.sigma_data = read_double(ar, "sigma_data", path);
  pc.sigma_min = read_double(ar, "sigma_min", path);
  pc.sigma_max = read_double(ar, "sigma_max", path);
  if (!(pc.sigma_data > 0 && pc.sigma_min > 0 && pc.sigma_max > pc.sigma_min))
    throw ConfigError("model file '" + path + "' has an invalid sigma range");
  ModelFile f;
  UNetConfig arch;
  try {
    arch = UNetConfig::from_string(read_string(ar, "architecture", path));
  } catch (const ConfigError& e) {
    throw ConfigError("model file '" + path + "': " + e.what());
  }
  f.model = Preconditioned(arch, pc);
  c10::IValue meta;
  if (ar.try_read("meta", meta) && meta.isGenericDict())
    for (const auto& kv : meta.toGenericDict())
      if (kv.key().isString() && kv.value().isString()) f.meta[kv.key().toStringRef()] = kv.value().toStringRef();
  torch::serialize::InputArchive weights;
  try {
    ar.read("weights", weights);
    f.model->load(weights);
  } catch (const std::exception& e) {
    throw ConfigError("model file '" + path + "': weights do not match the architecture (" +
                      first_line(e.what()).substr(0, 200) + ")");
  }
  f.model->eval();
  return f;
}

void copy_weights(torch::nn::Module& to, const torch::nn::Module& from) {
  torch::NoGradGuard g;
  auto tp = to.named_parameters(), fp = from.named_parameters();
  for (const auto& item : fp) tp[item.key()].copy_(item.value());
  auto tb = to.named_buffers(), fb = from.named_buffers();
  for (const auto& item : fb) tb[item.key()].copy_(item.value());
}

void ema_update(torch::nn::Module& to, const torch::nn::Module& from, double decay) {
  torch::NoGradGuard g;
  auto tp = to.named_parameters();
  for (const auto& item : from.named_parameters()) tp[item.key()].mul_(decay).add_(item.value(), 1.0 - decay);
}

}  // namespace psbench::nn
