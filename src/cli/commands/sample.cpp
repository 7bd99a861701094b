// psbench sample: a PNG grid of draws from a prior (exact draws, or Phi(z) through its generator).
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <sstream>
#include <iomanip>
#include <iostream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "core/rng.h"
#include "io/png.h"
#include "priors/prior.h"
#include "store/result_store.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

const OptionSpec& find_spec(const std::vector<OptionSpec>& specs, const std::string& prior, const std::string& key) {
  for (const auto& s : specs)
    if (s.key == key) return s;
  std::string known;
  for (const auto& s : specs) known += (known.empty() ? "" : ", ") + s.key;
  throw ConfigError("sample: prior " + prior + " has no option '" + key + "' (known: " + known + ")");
}

int cmd_sample(const std::vector<std::string>& args) {
  po::options_description desc("psbench sample --prior NAME [--set KEY=VALUE ...] --out FILE.png [options]");
  std::string prior_name, out, yaml_text, method, h5_out, device;
  int64_t grid = 64, batch = 100;
  std::vector<std::string> sets;
  int64_t n = 16, seed = 0, cols = 8, scale = 2;
  bool no_labels = false;
  desc.add_options()("help,h", "show this help")(
      "prior,p", po::value(&prior_name), "registered prior (psbench list)")(
      "set", po::value(&sets)->composing(), "prior option KEY=VALUE (repeatable)")(
      "options", po::value(&yaml_text), "prior options as a YAML map, e.g. '{rank: 8, ode_steps: 8}'")(
      "n,n", po::value(&n)->default_value(16), "number of samples")(
      "seed,s", po::value(&seed)->default_value(0), "experiment seed (prior parameters and draws)")(
      "method", po::value(&method)->default_value("auto"),
      "exact (prior draws), generator (Phi(z), z ~ N(0, I)) or auto (exact when available)")(
      "cols", po::value(&cols)->default_value(8), "images per grid row")(
      "scale", po::value(&scale)->default_value(2), "pixel magnification")(
      "no-labels", po::bool_switch(&no_labels), "the bare grid, without the title and value bar drawn into the PNG")(
      "out,o", po::value(&out), "output PNG")(
      "grid", po::value(&grid)->default_value(64), "at most this many draws in the PNG")(
      "h5", po::value(&h5_out), "also store all draws as dataset 'images' of this HDF5 file (for psbench fd)")(
      "batch", po::value(&batch)->default_value(100), "draws generated together")(
      "device", po::value(&device)->default_value("cpu"), "cpu or cuda (priors with a device option)");
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (prior_name.empty()) throw UsageError("sample: missing --prior");
  if (out.empty()) throw UsageError("sample: missing --out FILE.png");
  if (n < 1) throw UsageError("sample: --n must be >= 1, got " + std::to_string(n));
  if (cols < 1 || scale < 1) throw UsageError("sample: --cols and --scale must be >= 1");
  if (seed < 0) throw UsageError("sample: --seed must be >= 0");
  if (grid < 1 || batch < 1) throw UsageError("sample: --grid and --batch must be >= 1");
  if (device != "cpu" && device != "cuda") throw UsageError("sample: --device must be cpu or cuda, got '" + device + "'");
  if (method != "auto" && method != "exact" && method != "generator")
    throw UsageError("sample: --method must be auto, exact or generator, got '" + method + "'");

  const auto& entry = PriorRegistry::instance().get(prior_name, "prior");
  std::map<std::string, OptionValue> given;
  if (!yaml_text.empty()) {
    YAML::Node node;
    try { node = YAML::Load(yaml_text); } catch (const YAML::Exception& e) {
      throw ConfigError("sample: --options: not valid YAML (" + std::string(e.what()) + ")");
    }
    if (!node.IsMap()) throw ConfigError("sample: --options: expected a YAML map such as '{rank: 8}'");
    for (const auto& kv : node) {
      const auto key = kv.first.as<std::string>();
      given[key] = parse_option(find_spec(entry.options, prior_name, key), kv.second,
                                "sample: --options: " + key);
    }
  }
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("sample: --set expects KEY=VALUE, got '" + s + "'");
    const std::string key = s.substr(0, eq);
    given[key] = parse_option(find_spec(entry.options, prior_name, key), YAML::Load(s.substr(eq + 1)),
                              "sample: --set " + key);
  }
  for (const auto& spec : entry.options)
    if (spec.key == "device") given["device"] = device;
  auto opts = resolve_options(prior_name, entry.options, given);
  const uint64_t useed = static_cast<uint64_t>(seed);
  auto prior = entry.make(opts, derive_seed({useed, static_cast<uint64_t>(Stream::PriorParams)}));
  const Shape shape = prior->data_shape();
  if (shape.size() != 3 || (shape[0] != 1 && shape[0] != 3))
    throw ConfigError("sample: prior " + prior_name + " has data shape " + shape_string(shape) +
                      "; a PNG grid needs images [1 or 3, H, W]");

  auto gen = make_generator(derive_seed({useed, static_cast<uint64_t>(Stream::GroundTruth)}));
  if (method == "auto") method = prior->can_sample() ? "exact" : "generator";
  at::Tensor x;
  if (method == "exact") {
    if (!prior->can_sample()) throw ConfigError("sample: prior " + prior_name + " cannot be sampled exactly; use --method generator");
    x = prior->sample(n, gen);
  } else {
    const Generator* g = prior->generator();
    if (!g) throw ConfigError("sample: prior " + prior_name + " has no generator");
    Shape zs = g->latent_shape();
    zs.insert(zs.begin(), n);
    at::NoGradGuard no_grad;
    auto z = at::randn(zs, gen, at::TensorOptions().dtype(prior->dtype()));
    std::vector<at::Tensor> parts;
    for (int64_t i = 0; i < n; i += batch) parts.push_back(g->generate(z.slice(0, i, std::min(n, i + batch))));
    x = at::cat(parts, 0);
  }
  std::vector<at::Tensor> images;
  for (int64_t i = 0; i < std::min(n, grid); ++i) images.push_back(x[i]);
  if (auto parent = std::filesystem::path(out).parent_path(); !parent.empty())
    std::filesystem::create_directories(parent);
  const double clipped = (x.abs() > 1).to(at::kDouble).mean().item<double>();
  GridLabels labels;
  if (!no_labels) {
    std::ostringstream title, bar;
    title << "psbench sample: " << images.size() << " of " << n << " "
          << (method == "exact" ? "exact draws" : "generator draws Phi(z), z ~ N(0, I),") << " of " << opts.canonical()
          << ", seed " << seed;
    bar << "pixel value (" << std::fixed << std::setprecision(1) << 100 * clipped << "% of pixels outside [-1, 1], clipped for display)";
    labels.title = title.str();
    labels.value_bar = bar.str();
  }
  write_png_grid(out, images, cols, 2, scale, labels);
  if (!h5_out.empty()) {
    auto prov = prior->provenance();
    prov["prior"] = opts.canonical();
    prov["method"] = method;
    prov["seed"] = std::to_string(seed);
    write_hdf5_dataset(h5_out, "images", x.to(at::kFloat), prov);
  }
  std::cout << "sample: " << n << " " << method << " draws of " << opts.canonical() << ", shape "
            << shape_string(shape) << ", range [" << x.min().item<double>() << ", " << x.max().item<double>()
            << "] (" << 100 * clipped << "% of pixels outside [-1, 1], clipped for display) -> " << out << "\n";
  return 0;
}

CommandRegistrar reg_sample({"sample", "sample --prior NAME [--set KEY=VALUE ...] --out FILE.png [--n N] [--seed S]",
                             "write a PNG grid of draws from a prior", cmd_sample});

}  // namespace
}  // namespace psbench
