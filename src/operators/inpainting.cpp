// Inpainting tasks `inpaint_random` and `inpaint_box` (ALGORITHMS.md §8; docs/tasks.md).
#include "operators/inpainting.h"

#include "operators/svd.h"

#include <cmath>

namespace psbench {

MaskOperator::MaskOperator(std::string name, const Shape& x_shape, at::Tensor mask)
    : name_(std::move(name)), in_(x_shape), mask_(mask.to(at::kDouble).contiguous()) {}

at::Tensor MaskOperator::forward(const at::Tensor& x) const { return x * mask_.to(x.device(), x.scalar_type()); }

std::shared_ptr<const SvdView> MaskOperator::svd() const {
  auto observed = mask_.expand({in_[0], in_[1], in_[2]}).flatten() > 0.5;
  auto perm = at::cat({at::nonzero(observed).flatten(), at::nonzero(observed.logical_not()).flatten()});
  auto p = permutation_orthogonal(perm);
  return std::make_shared<SvdView>(in_, in_, at::ones({observed.sum().item<int64_t>()}, at::kDouble), p, p);
}

at::Tensor random_pixel_mask(int64_t h, int64_t w, double observed, at::Generator& gen) {
  const int64_t n = h * w;
  const int64_t keep = std::max<int64_t>(1, std::llround(observed * static_cast<double>(n)));
  auto perm = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong));
  auto mask = at::zeros({n}, at::kDouble);
  mask.index_fill_(0, perm.narrow(0, 0, keep), 1.0);
  return mask.view({h, w});
}

at::Tensor random_box_mask(int64_t h, int64_t w, int64_t box, int64_t margin, at::Generator& gen) {
  auto opts = at::TensorOptions().dtype(at::kLong);
  // randint's upper bound is exclusive: top in [margin, h - margin - box].
  const int64_t top = at::randint(margin, h - margin - box + 1, {1}, gen, opts).item<int64_t>();
  const int64_t left = at::randint(margin, w - margin - box + 1, {1}, gen, opts).item<int64_t>();
  auto mask = at::ones({h, w}, at::kDouble);
  mask.narrow(0, top, box).narrow(1, left, box).zero_();
  return mask;
}

namespace {

class RandomInpaintTask : public Task {
 public:
  explicit RandomInpaintTask(const Options& o)
      : observed_(o.get_real("observed")), sigma_y_(checked_sigma_y("inpaint_random", o)) {
    if (!(observed_ > 0 && observed_ <= 1))
      throw ConfigError(task_context("inpaint_random") + "observed=" + format_value(observed_) +
                        " must be in (0, 1] (the fraction of pixels observed)");
  }
  MeasurementModel build(const Shape& x_shape, at::Generator& gen) const override {
    check_image_shape("inpaint_random", x_shape);
    MeasurementModel m;
    m.op = std::make_unique<MaskOperator>("inpaint_random", x_shape,
                                          random_pixel_mask(x_shape[1], x_shape[2], observed_, gen));
    m.noise.sigma_y = sigma_y_;
    return m;
  }

 private:
  double observed_, sigma_y_;
};

class BoxInpaintTask : public Task {
 public:
  explicit BoxInpaintTask(const Options& o)
      : box_(o.get_int("box_size")), margin_(o.get_int("margin")), sigma_y_(checked_sigma_y("inpaint_box", o)) {
    if (box_ < 0)
      throw ConfigError(task_context("inpaint_box") + "box_size=" + std::to_string(box_) + " must be >= 0 (0 = auto)");
    if (margin_ < -1)
      throw ConfigError(task_context("inpaint_box") + "margin=" + std::to_string(margin_) + " must be >= -1 (-1 = auto)");
  }
  MeasurementModel build(const Shape& x_shape, at::Generator& gen) const override {
    check_image_shape("inpaint_box", x_shape);
    const int64_t side = std::min(x_shape[1], x_shape[2]);
    // Paper (DPS): a 128x128 box with a 16-pixel margin on 256x256 images.
    const int64_t box = box_ > 0 ? box_ : std::max<int64_t>(1, std::llround(scale_from_paper(128.0, side)));
    const int64_t margin = margin_ >= 0 ? margin_ : std::llround(scale_from_paper(16.0, side));
    if (box + 2 * margin > side)
      throw ConfigError(task_context("inpaint_box") + "box_size=" + std::to_string(box) + " with margin=" +
                        std::to_string(margin) + " does not fit in the image (needs box_size + 2 margin <= " +
                        std::to_string(side) + ", data shape " + shape_string(x_shape) + ")");
    MeasurementModel m;
    m.op = std::make_unique<MaskOperator>("inpaint_box", x_shape,
                                          random_box_mask(x_shape[1], x_shape[2], box, margin, gen));
    m.noise.sigma_y = sigma_y_;
    return m;
  }

 private:
  int64_t box_, margin_;
  double sigma_y_;
};

TaskRegistrar reg_inpaint_random(
    {"inpaint_random",
     "random-pixel inpainting: a fixed fraction of pixels observed, the mask drawn once per measurement and shared "
     "over channels",
     {OptionSpec::real("observed", 0.2,
                       "fraction of pixels observed, in (0, 1]; the noise-space Langevin paper 0.1 and 0.2, DPS 0.08")
          .above(0)
          .at_most(1),
      sigma_y_option()},
     [](const Options& o) { return std::make_unique<RandomInpaintTask>(o); }});

TaskRegistrar reg_inpaint_box(
    {"inpaint_box", "box inpainting: a square hole at a random position inside a margin (DPS)",
     {OptionSpec::integer("box_size", 0, "side of the square hole in pixels; 0 = auto: round(128 * side / 256)")
          .at_least(0),
      OptionSpec::integer("margin", -1,
                          "minimum distance of the hole from the image border in pixels; -1 = auto: "
                          "round(16 * side / 256)")
          .at_least(-1),
      sigma_y_option()},
     [](const Options& o) { return std::make_unique<BoxInpaintTask>(o); }});

}  // namespace
}  // namespace psbench
