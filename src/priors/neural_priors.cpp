// Registered neural priors: `edm` (psbench's EDM denoiser; Phi = k-step Heun ODE), `consistency`
// (psbench's consistency model as Phi; its EDM teacher as the denoiser) and `torchscript` (networks
// exported from PyTorch). Model paths resolve in the working directory, then in the source tree.
#include <filesystem>

#include "core/errors.h"
#include "core/sha256.h"
#include "priors/neural.h"
#include "priors/ode_generator.h"

namespace psbench {
namespace {

constexpr const char* kShippedDenoiser = "data/models/edm_fmnist.pt";
constexpr const char* kShippedConsistency = "data/models/cm_fmnist.pt";

Shape model_shape(const nn::ModelFile& f, const std::string& path) {
  auto it = f.meta.find("shape");
  if (it == f.meta.end()) return {f.model->unet_config().channels, 28, 28};
  Shape s;
  std::stringstream ss(it->second);
  std::string item;
  while (std::getline(ss, item, ',')) s.push_back(std::stoll(item));
  if (s.size() != 3 || s[0] != f.model->unet_config().channels)
    throw ConfigError("model file '" + path + "' has an inconsistent shape entry '" + it->second + "'");
  return s;
}

OptionSpec device_option() {
  return OptionSpec::choice("device", "cpu", {"cpu", "cuda"}, "where the network runs (psbench run --device sets it)")
      .execution();
}

class NeuralPrior : public Prior {
 public:
  NeuralPrior(std::string name, Shape shape) : name_(std::move(name)), shape_(std::move(shape)) {}
  std::string name() const override { return name_; }
  Shape data_shape() const override { return shape_; }
  const Denoiser* denoiser() const override { return denoiser_.get(); }
  const Generator* generator() const override { return generator_.get(); }
  const ConsistencyFunction* consistency() const override { return consistency_.get(); }
  std::map<std::string, std::string> provenance() const override { return provenance_; }

  void record_file(const std::string& role, const std::string& path, const std::map<std::string, std::string>& meta = {}) {
    provenance_[role + "_file"] = path;
    provenance_[role + "_sha256"] = sha256_file(path);
    for (const auto& key : {"training_command", "steps", "wall_seconds"}) {
      auto it = meta.find(key);
      if (it != meta.end()) provenance_[role + "_" + key] = it->second;
    }
  }

  std::string name_;
  Shape shape_;
  std::unique_ptr<Denoiser> denoiser_;
  std::shared_ptr<const Generator> generator_;  // may be the same object as consistency_
  // The consistency model's f for DPS-CM, or the ODE of the denoiser from sigma to 0 (ode_steps).
  std::shared_ptr<const ConsistencyFunction> consistency_;
  std::map<std::string, std::string> provenance_;
};

std::unique_ptr<Generator> ode_phi(const Denoiser& d, const Shape& shape, int64_t steps, double rho) {
  const double smax = d.sigma_max();
  return std::make_unique<OdeGenerator>(d, shape, steps, rho, [smax](const at::Tensor& z) { return smax * z; });
}

PriorRegistrar reg_edm(
    {"edm",
     "psbench's EDM denoiser (UNet, Fashion-MNIST); generator Phi = Heun ODE of ode_steps steps from sigma_max z",
     {OptionSpec::text("model", kShippedDenoiser, "EDM denoiser model file (psbench train denoiser)"),
      OptionSpec::integer("ode_steps", 18, "Heun steps of Phi (2*steps-1 network evaluations)").at_least(1),
      OptionSpec::real("rho", 7.0, "Karras grid exponent").above(0), device_option()},
     [](const Options& o, uint64_t) -> std::unique_ptr<Prior> {
       const auto path = resolve_model_path(o.get_string("model"));
       auto f = nn::load_model(path);
       if (f.model->precond().kind != nn::Parameterization::Denoiser)
         throw ConfigError("prior edm: '" + path + "' is a consistency model; use the consistency prior");
       auto prior = std::make_unique<NeuralPrior>("edm", model_shape(f, path));
       prior->record_file("denoiser", path, f.meta);
       prior->denoiser_ = std::make_unique<NetworkDenoiser>(f.model, parse_device(o.get_string("device")));
       prior->generator_ = ode_phi(*prior->denoiser_, prior->shape_, o.get_int("ode_steps"), o.get_real("rho"));
       prior->consistency_ = std::make_shared<OdeConsistency>(*prior->denoiser_, o.get_int("ode_steps"), o.get_real("rho"));
       return prior;
     }});

PriorRegistrar reg_consistency(
    {"consistency",
     "psbench's consistency model as Phi (1 step, or multistep with frozen noise); its EDM teacher as the denoiser",
     {OptionSpec::text("model", kShippedConsistency, "consistency model file (psbench train consistency)"),
      OptionSpec::integer("steps", 1, "consistency sampling steps (network evaluations of Phi)").at_least(1),
      OptionSpec::text("teacher", kShippedDenoiser, "EDM denoiser offered to denoiser-based samplers ('' for none)"),
      device_option()},
     [](const Options& o, uint64_t) -> std::unique_ptr<Prior> {
       const auto device = parse_device(o.get_string("device"));
       const auto path = resolve_model_path(o.get_string("model"));
       auto f = nn::load_model(path);
       auto prior = std::make_unique<NeuralPrior>("consistency", model_shape(f, path));
       prior->record_file("generator", path, f.meta);
       auto gen = std::make_shared<ConsistencyGenerator>(f.model, device, prior->shape_, o.get_int("steps"));
       prior->consistency_ = gen;  // f(x, sigma) itself (one network evaluation) for DPS-CM
       prior->generator_ = gen;
       if (!o.get_string("teacher").empty()) {
         const auto tpath = resolve_model_path(o.get_string("teacher"));
         auto t = nn::load_model(tpath);
         if (t.model->precond().kind != nn::Parameterization::Denoiser)
           throw ConfigError("prior consistency: teacher '" + tpath + "' is not an EDM denoiser");
         prior->record_file("denoiser", tpath, t.meta);
         prior->denoiser_ = std::make_unique<NetworkDenoiser>(t.model, device);
       }
       return prior;
     }});

std::string conventions_path(const std::string& given, const std::string& model) {
  if (!given.empty()) return given;
  return std::filesystem::path(model).replace_extension(".yaml").string();
}

PriorRegistrar reg_torchscript(
    {"torchscript",
     "networks exported from PyTorch: denoiser forward(x, sigma) (EDM), consistency function forward(x, sigma) "
     "and/or generator forward(z), each with a sidecar YAML",
     {OptionSpec::text("denoiser", "", "TorchScript denoiser file ('' for none)"),
      OptionSpec::text("consistency", "",
                       "TorchScript consistency function f(x, sigma) ('' for none): the x0 estimate of DPS-CM/LGD-CM, "
                       "and Phi (consistency_steps-step consistency sampling) when no generator file is given"),
      OptionSpec::text("generator", "",
                       "TorchScript generator file ('' for none: Phi from the consistency function, else the Heun ODE "
                       "of the denoiser)"),
      OptionSpec::text("denoiser_conventions", "", "sidecar YAML (default: the denoiser file with .yaml)"),
      OptionSpec::text("consistency_conventions", "", "sidecar YAML (default: the consistency file with .yaml)"),
      OptionSpec::text("generator_conventions", "", "sidecar YAML (default: the generator file with .yaml)"),
      OptionSpec::integer("consistency_steps", 1, "steps of Phi from the consistency function (frozen noise)").at_least(1),
      OptionSpec::integer("ode_steps", 18, "Heun steps of Phi when no generator file is given").at_least(1),
      OptionSpec::real("rho", 7.0, "Karras grid exponent").above(0), device_option()},
     [](const Options& o, uint64_t) -> std::unique_ptr<Prior> {
       const auto device = parse_device(o.get_string("device"));
       const auto dfile = o.get_string("denoiser"), gfile = o.get_string("generator"), cfile = o.get_string("consistency");
       if (dfile.empty() && gfile.empty() && cfile.empty())
         throw ConfigError("prior torchscript: give a denoiser, a consistency and/or a generator file");
       std::unique_ptr<NeuralPrior> prior;
       auto shape_of = [&prior](const TorchScriptConventions& conv, const char* role) {
         if (!prior) prior = std::make_unique<NeuralPrior>("torchscript", conv.shape);
         else if (prior->shape_ != conv.shape)
           throw ConfigError(std::string("prior torchscript: the ") + role + " file's shape differs from the denoiser's");
       };
       if (!dfile.empty()) {
         const auto path = resolve_model_path(dfile);
         auto conv = TorchScriptConventions::load(conventions_path(o.get_string("denoiser_conventions"), path));
         if (conv.kind != "denoiser") throw ConfigError("prior torchscript: conventions of '" + path + "' say kind " + conv.kind);
         prior = std::make_unique<NeuralPrior>("torchscript", conv.shape);
         prior->record_file("denoiser", path);
         prior->denoiser_ = std::make_unique<TorchScriptDenoiser>(path, conv, device);
       }
       if (!gfile.empty()) {
         const auto path = resolve_model_path(gfile);
         auto conv = TorchScriptConventions::load(conventions_path(o.get_string("generator_conventions"), path));
         if (conv.kind != "generator") throw ConfigError("prior torchscript: conventions of '" + path + "' say kind " + conv.kind);
         shape_of(conv, "generator");
         prior->record_file("generator", path);
         prior->generator_ = std::make_unique<TorchScriptGenerator>(path, conv, device);
       }
       std::shared_ptr<TorchScriptConsistency> cm;
       if (!cfile.empty()) {
         const auto path = resolve_model_path(cfile);
         auto conv = TorchScriptConventions::load(conventions_path(o.get_string("consistency_conventions"), path));
         if (conv.kind != "consistency")
           throw ConfigError("prior torchscript: conventions of '" + path + "' say kind " + conv.kind);
         shape_of(conv, "consistency");
         prior->record_file("consistency", path);
         cm = std::make_shared<TorchScriptConsistency>(path, conv, device, o.get_int("consistency_steps"));
         prior->consistency_ = cm;
       } else if (prior->denoiser_) {
         prior->consistency_ = std::make_shared<OdeConsistency>(*prior->denoiser_, o.get_int("ode_steps"), o.get_real("rho"));
       }
       if (!prior->generator_) {
         if (cm)
           prior->generator_ = cm;  // Phi(z): consistency sampling with f
         else
           prior->generator_ = ode_phi(*prior->denoiser_, prior->shape_, o.get_int("ode_steps"), o.get_real("rho"));
       }
       return prior;
     }});

}  // namespace
}  // namespace psbench
