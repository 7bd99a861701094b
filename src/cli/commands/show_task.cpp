// psbench show-task: one PNG row per task with the test image, its clean and noisy measurement and
// the pseudo-inverse of the noisy measurement, so that a person can see what every degradation does.
#include <ATen/ATen.h>
#include <yaml-cpp/yaml.h>

#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "io/png.h"
#include "operators/operator.h"
#include "priors/prior.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

// Image datasets ignore the prior; this stands in for it.
class NoPrior : public DrawSource {
 public:
  std::string name() const override { return "none"; }
  Shape data_shape() const override { return {}; }
};

at::Tensor image_from_png(const std::string& path) {
  auto px = read_png(path);  // uint8 [H, W, C]
  int64_t c = px.size(2);
  if (c == 2 || c == 4) px = px.narrow(2, 0, c - 1);  // drop alpha
  return px.permute({2, 0, 1}).to(at::kFloat) / 127.5 - 1.0;
}

at::Tensor test_image(const std::string& image, const std::string& dataset, int64_t index) {
  if (!image.empty()) return image_from_png(image);
  const auto& entry = DatasetRegistry::instance().get(dataset, "dataset");
  auto ds = entry.make(resolve_options(dataset, entry.options, {}));
  if (ds->uses_prior())
    throw ConfigError("show-task: dataset '" + dataset + "' draws x* from a prior; choose an image dataset or --image");
  NoPrior none;
  auto gen = make_generator(derive_seed({static_cast<uint64_t>(index), static_cast<uint64_t>(Stream::GroundTruth)}));
  return ds->ground_truth(index, none, gen).to(at::kFloat);
}

// "task.key=value" overrides, parsed against the task's option specs like an experiment file.
std::map<std::string, std::map<std::string, OptionValue>> parse_overrides(const std::vector<std::string>& sets) {
  std::map<std::string, std::map<std::string, OptionValue>> out;
  for (const auto& s : sets) {
    const auto dot = s.find('.'), eq = s.find('=');
    if (dot == std::string::npos || eq == std::string::npos || eq < dot)
      throw UsageError("show-task: --set expects TASK.KEY=VALUE, got '" + s + "'");
    const std::string task = s.substr(0, dot), key = s.substr(dot + 1, eq - dot - 1), value = s.substr(eq + 1);
    const auto& entry = TaskRegistry::instance().get(task, "task");
    const OptionSpec* spec = nullptr;
    for (const auto& o : entry.options)
      if (o.key == key) spec = &o;
    if (!spec) throw ConfigError("show-task: --set " + s + ": task " + task + " has no option '" + key + "'");
    out[task][key] = parse_option(*spec, YAML::Node(value), "show-task: --set " + task + "." + key);
  }
  return out;
}

// A measurement as a [C', H, W] picture next to the image: images of the image's size as they are;
// smaller images (super-resolution) enlarged by pixel repetition; anything else (phase retrieval
// magnitudes) as log(1 + max(y, 0)) mapped linearly from [0, max of the clean one] to [-1, 1].
at::Tensor displayable(const at::Tensor& y, const at::Tensor& clean, const Shape& x_shape, std::string* how) {
  const Shape ys = y.sizes().vec();
  if (ys == x_shape) return y;
  if (ys.size() == 3 && ys[0] == x_shape[0] && ys[1] <= x_shape[1] && ys[2] <= x_shape[2] && x_shape[1] % ys[1] == 0 &&
      x_shape[2] % ys[2] == 0 && x_shape[1] / ys[1] == x_shape[2] / ys[2]) {
    const int64_t f = x_shape[1] / ys[1];
    *how = "measurement enlarged x" + std::to_string(f) + " by pixel repetition";
    return y.repeat_interleave(f, 1).repeat_interleave(f, 2);
  }
  if (ys.size() == 3 && (ys[0] == 1 || ys[0] == 3)) {
    auto top = at::log1p(clean.clamp_min(0)).max().item<double>();
    if (top <= 0) top = 1;
    *how = "measurement shown as log(1 + |y|), rescaled by the clean maximum";
    return at::log1p(y.clamp_min(0)) / top * 2.0 - 1.0;
  }
  throw ConfigError("show-task: measurement of shape " + shape_string(ys) + " cannot be displayed");
}

int cmd_show_task(const std::vector<std::string>& args) {
  po::options_description desc("psbench show-task [options]");
  std::string out, dataset, image, tasks_arg;
  int64_t index = 0, scale = 0;
  uint64_t seed = 0;
  bool no_labels = false;
  std::vector<std::string> sets;
  desc.add_options()("help,h", "show this help")(
      "out,o", po::value(&out)->default_value("show_task.png"), "PNG file to write")(
      "tasks", po::value(&tasks_arg), "comma-separated task names (default: every task that builds on the image "
                                      "with its default options)")(
      "set", po::value(&sets)->composing(), "TASK.KEY=VALUE option override (repeatable), e.g. hdr.scale=3")(
      "dataset", po::value(&dataset)->default_value("fashion_mnist"), "dataset providing the test image")(
      "index", po::value(&index)->default_value(0), "measurement index of the test image in the dataset")(
      "image", po::value(&image), "use this PNG as the test image instead of a dataset")(
      "seed", po::value(&seed)->default_value(0), "seed of masks, kernels and noise")(
      "scale", po::value(&scale)->default_value(0), "pixel enlargement in the PNG (0 = 4 for images up to 64 "
                                                    "pixels, else 1)")(
      "no-labels", po::bool_switch(&no_labels), "the bare grid, without the title, row and column names and value bar "
                                                "drawn into the PNG");
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) {
    std::cout << desc << "\nColumns: image x | clean A(x) | noisy y = A(x) + sigma_y n | pseudo-inverse of y (grey "
                         "when the operator has none).\n";
    return 0;
  }
  if (index < 0) throw UsageError("show-task: --index must be >= 0");
  if (scale < 0) throw UsageError("show-task: --scale must be >= 0");

  const auto x = test_image(image, dataset, index);
  const Shape x_shape = x.sizes().vec();
  if (scale == 0) scale = std::max(x_shape[1], x_shape[2]) <= 64 ? 4 : 1;
  const auto overrides = parse_overrides(sets);

  std::vector<std::string> names;
  const bool explicit_tasks = !tasks_arg.empty();
  if (explicit_tasks) {
    std::stringstream ss(tasks_arg);
    for (std::string t; std::getline(ss, t, ',');)
      if (!t.empty()) names.push_back(t);
  } else {
    for (const auto& [name, e] : TaskRegistry::instance().entries()) names.push_back(name);
  }

  std::vector<at::Tensor> tiles;
  GridLabels labels;
  labels.column_names = {"image x", "clean A(x)", "noisy y = A(x) + sigma_y n", "pseudo-inverse of y"};
  labels.value_bar = "grey scale of every tile: image pixel values (measurements mapped as each row says)";
  int64_t row = 0;
  for (const auto& name : names) {
    const auto& entry = TaskRegistry::instance().get(name, "task");
    auto given = overrides.count(name) ? overrides.at(name) : std::map<std::string, OptionValue>{};
    const auto opts = resolve_options(name, entry.options, given);
    MeasurementModel model;
    try {
      auto gen = make_generator(derive_seed({seed, hash_string(name), static_cast<uint64_t>(Stream::Operator)}));
      model = entry.make(opts)->build(x_shape, gen);
    } catch (const ConfigError& e) {
      if (explicit_tasks) throw;
      std::cerr << "show-task: skipping " << name << ": " << e.what() << "\n";
      continue;
    }
    auto noise_gen = make_generator(derive_seed({seed, hash_string(name), static_cast<uint64_t>(Stream::Noise)}));
    auto clean = model.op->forward(x.unsqueeze(0)).detach();
    auto noisy = model.noise.sample(clean, noise_gen);
    std::string how;
    auto clean_img = displayable(clean[0], clean[0], x_shape, &how);
    std::string how_noisy;
    auto noisy_img = displayable(noisy[0], clean[0], x_shape, &how_noisy);
    at::Tensor inverse = at::full(x_shape, 0.6, x.options());
    std::string inverse_note = "no pseudo-inverse (grey tile)";
    if (model.op->has_pseudo_inverse()) {
      inverse = model.op->pseudo_inverse(noisy).detach()[0];
      inverse_note = "pseudo-inverse of y";
    }
    tiles.insert(tiles.end(), {x, clean_img, noisy_img, inverse});
    const std::string shown = how.empty() ? "measurement as an image" : how;
    std::cout << "row " << ++row << ": " << opts.canonical() << " - " << shown << "; " << inverse_note << "\n";
    labels.row_names.push_back(opts.canonical() + " - " + shown + "; " + inverse_note);
  }
  if (tiles.empty()) throw ConfigError("show-task: no task could be built on an image of shape " + shape_string(x_shape));
  labels.title = "psbench show-task: " + (image.empty() ? dataset + " test image " + std::to_string(index) : image) +
                 ", seed " + std::to_string(seed);
  if (no_labels) labels = GridLabels{};
  write_png_grid(out, tiles, 4, 2, scale, labels);
  std::cout << "columns: image x | clean A(x) | noisy y | pseudo-inverse; wrote " << out << "\n";
  return 0;
}

CommandRegistrar reg_show_task({"show-task",
                                "show-task [--out FILE.png] [--tasks a,b] [--set TASK.KEY=VALUE] [--dataset NAME | "
                                "--image FILE.png]",
                                "PNG of every task's clean and noisy measurement and pseudo-inverse on a test image",
                                cmd_show_task});

}  // namespace
}  // namespace psbench
