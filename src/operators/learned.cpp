// Learned-operator task `learned` (ALGORITHMS.md §8 "nonlinear deblur"; docs/tasks.md).
#include "operators/learned.h"

#include <filesystem>
#include <sstream>

#include "core/errors.h"

namespace psbench {

Shape parse_output_shape(const std::string& text, const Shape& x_shape) {
  if (text == "input") return x_shape;
  if (text == "any") return {};
  Shape out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, 'x')) {
    size_t pos = 0;
    long long v = 0;
    try { v = std::stoll(part, &pos); } catch (...) { pos = 0; }
    if (pos == 0 || pos != part.size() || v < 1)
      throw ConfigError(task_context("learned") + "output_shape='" + text +
                        "' is not 'input', 'any' or sizes like 1x28x28");
    out.push_back(v);
  }
  if (out.empty())
    throw ConfigError(task_context("learned") + "output_shape='" + text + "' is not 'input', 'any' or sizes like 1x28x28");
  return out;
}

LearnedOperator::LearnedOperator(const std::string& path, const Shape& x_shape, const Shape& expected_output,
                                 const std::string& expected_text)
    : path_(path), in_(x_shape) {
  const std::string ctx = task_context("learned");
  if (path.empty()) throw ConfigError(ctx + "path is required (a TorchScript file saved with torch.jit.save)");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw ConfigError(ctx + "path=" + path + ": no such file");
  try {
    module_ = torch::jit::load(path, at::kCPU);
  } catch (const std::exception& e) {
    throw ConfigError(ctx + "path=" + path + ": cannot load as TorchScript: " + first_line(e.what()));
  }
  module_.eval();
  for (const auto& p : module_.parameters()) {
    dtype_ = p.scalar_type();
    break;
  }
  Shape dummy{2};
  dummy.insert(dummy.end(), x_shape.begin(), x_shape.end());
  at::Tensor y;
  try {
    at::NoGradGuard no_grad;
    y = run(at::zeros(dummy, at::TensorOptions().dtype(dtype_)));
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(ctx + "path=" + path + ": forward on a batch of shape " + shape_string(dummy) +
                      " failed: " + first_line(e.what()));
  }
  if (y.dim() < 2 || y.size(0) != 2)
    throw ConfigError(ctx + "path=" + path + ": output of shape " + shape_string(y.sizes().vec()) +
                      " for a batch of 2 is not batched as [2, ...]");
  out_ = Shape(y.sizes().begin() + 1, y.sizes().end());
  if (!expected_output.empty() && out_ != expected_output)
    throw ConfigError(ctx + "output_shape=" + expected_text + ": the module at path=" + path + " maps " +
                      shape_string(x_shape) + " to " + shape_string(out_) + ", expected " +
                      shape_string(expected_output));
}

at::Tensor LearnedOperator::run(const at::Tensor& x) const {
  auto out = module_.forward({x.to(dtype_)});
  if (!out.isTensor())
    throw ConfigError(task_context("learned") + "path=" + path_ + ": forward(x) does not return a tensor");
  return out.toTensor();
}

at::Tensor LearnedOperator::forward(const at::Tensor& x) const { return run(x).to(x.scalar_type()); }

namespace {

class LearnedTask : public Task {
 public:
  explicit LearnedTask(const Options& o)
      : path_(o.get_string("path")), output_(o.get_string("output_shape")), sigma_y_(checked_sigma_y("learned", o)) {
    if (path_.empty()) throw ConfigError(task_context("learned") + "path is required (a TorchScript file)");
    parse_output_shape(output_, {1, 1, 1});  // syntax check before any data shape is known
  }
  MeasurementModel build(const Shape& x_shape, at::Generator&) const override {
    check_image_shape("learned", x_shape);
    MeasurementModel m;
    m.op = std::make_unique<LearnedOperator>(path_, x_shape, parse_output_shape(output_, x_shape), output_);
    m.noise.sigma_y = sigma_y_;
    return m;
  }

 private:
  std::string path_, output_;
  double sigma_y_;
};

TaskRegistrar reg_learned(
    {"learned",
     "a forward operator loaded from a TorchScript file (forward(x) -> y, batched; e.g. a learned nonlinear blur)",
     {OptionSpec::text("path", "", "TorchScript file saved with torch.jit.save (PyTorch 1.13); required"),
      OptionSpec::text("output_shape", "input",
                       "required per-image output shape: input (same as the image), any, or sizes like 1x14x14"),
      sigma_y_option()},
     [](const Options& o) { return std::make_unique<LearnedTask>(o); }});

}  // namespace
}  // namespace psbench
