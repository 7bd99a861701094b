// HDR task `hdr` (ALGORITHMS.md §8; docs/tasks.md).
#include "operators/hdr.h"

#include <cmath>

namespace psbench {
namespace {

class HdrTask : public Task {
 public:
  explicit HdrTask(const Options& o) : scale_(o.get_real("scale")), sigma_y_(checked_sigma_y("hdr", o)) {
    if (!(scale_ > 0) || !std::isfinite(scale_))
      throw ConfigError(task_context("hdr") + "scale=" + format_value(scale_) + " must be a finite number > 0");
  }
  MeasurementModel build(const Shape& x_shape, at::Generator&) const override {
    check_image_shape("hdr", x_shape);
    MeasurementModel m;
    m.op = std::make_unique<HdrClip>(x_shape, scale_);
    m.noise.sigma_y = sigma_y_;
    return m;
  }

 private:
  double scale_, sigma_y_;
};

TaskRegistrar reg_hdr({"hdr", "high dynamic range: y = clip(scale * x, -1, 1) (nonlinear)",
                       {OptionSpec::real("scale", 2.0, "exposure factor applied before clipping (> 0)").above(0),
                        sigma_y_option()},
                       [](const Options& o) { return std::make_unique<HdrTask>(o); }});

}  // namespace
}  // namespace psbench
