// Super-resolution tasks `sr_avgpool` and `sr_bicubic` (ALGORITHMS.md §8; docs/tasks.md).
#include "operators/super_resolution.h"

#include "operators/svd.h"

#include <cmath>

namespace psbench {

namespace {
template <class T>
at::Tensor like(const at::Tensor& m, const T& x) {
  return m.to(x.device(), x.scalar_type());
}
}  // namespace

AvgPoolDownsample::AvgPoolDownsample(const Shape& x_shape, int64_t factor) : in_(x_shape), s_(factor) {}

at::Tensor AvgPoolDownsample::forward(const at::Tensor& x) const { return at::avg_pool2d(x, {s_, s_}); }

at::Tensor AvgPoolDownsample::adjoint(const at::Tensor& y) const {
  // Each input pixel contributes 1/s^2 to exactly one output pixel.
  return y.repeat_interleave(s_, -2).repeat_interleave(s_, -1) / static_cast<double>(s_ * s_);
}

at::Tensor AvgPoolDownsample::pseudo_inverse(const at::Tensor& y) const {
  return y.repeat_interleave(s_, -2).repeat_interleave(s_, -1);
}

namespace {

// V of average pooling: inside every f x f block an orthonormal basis Q [f^2, f^2] of R^(f^2) whose first
// vector is the constant 1/f (the block's mean direction: A v = 1/f at the block's output pixel). The
// spectral vector holds first the constant coefficients of all blocks in output order [C, H/f, W/f], then
// the other f^2 - 1 coefficients of every block.
class BlockOrthogonal : public Orthogonal {
 public:
  BlockOrthogonal(const Shape& in, int64_t f) : c_(in[0]), h_(in[1] / f), w_(in[2] / f), f_(f) {
    const int64_t k = f * f;
    auto m = at::eye(k, at::kDouble);
    m.select(1, 0).fill_(1.0);
    auto [q, r] = at::linalg_qr(m);
    q_ = q * at::sign(r.diagonal()).unsqueeze(0);  // first column +1/f exactly as QR gives it up to sign
  }
  int64_t dim() const override { return c_ * h_ * w_ * f_ * f_; }
  at::Tensor apply_transpose(const at::Tensor& v) const override {
    const int64_t b = v.size(0), k = f_ * f_;
    auto blocks = v.reshape({b, c_, h_, f_, w_, f_}).permute({0, 1, 2, 4, 3, 5}).reshape({b, c_, h_, w_, k});
    auto coef = blocks.matmul(q_.to(v.scalar_type()));  // Q^T per block, blocks as rows
    return at::cat({coef.select(-1, 0).reshape({b, -1}), coef.narrow(-1, 1, k - 1).reshape({b, -1})}, 1);
  }
  at::Tensor apply(const at::Tensor& c) const override {
    const int64_t b = c.size(0), k = f_ * f_, m = c_ * h_ * w_;
    auto coef = at::cat({c.narrow(1, 0, m).reshape({b, c_, h_, w_, 1}), c.narrow(1, m, m * (k - 1)).reshape({b, c_, h_, w_, k - 1})},
                        -1);
    auto blocks = coef.matmul(q_.t().to(c.scalar_type()));
    return blocks.reshape({b, c_, h_, w_, f_, f_}).permute({0, 1, 2, 4, 3, 5}).reshape({b, -1});
  }

 private:
  int64_t c_, h_, w_, f_;
  at::Tensor q_;
};

}  // namespace

std::shared_ptr<const SvdView> AvgPoolDownsample::svd() const {
  const int64_t m = numel(output_shape());
  return std::make_shared<SvdView>(in_, output_shape(), at::full({m}, 1.0 / static_cast<double>(s_), at::kDouble),
                                   permutation_orthogonal(at::arange(m, at::kLong)),
                                   std::make_shared<BlockOrthogonal>(in_, s_));
}

double keys_cubic(double t) {
  constexpr double a = -0.5;
  t = std::abs(t);
  if (t < 1.0) return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
  if (t < 2.0) return (((t - 5.0) * t + 8.0) * t - 4.0) * a;
  return 0.0;
}

at::Tensor bicubic_downsample_matrix(int64_t n, int64_t factor) {
  const int64_t m = n / factor;
  const double s = static_cast<double>(factor);
  auto d = at::zeros({m, n}, at::kDouble);
  auto acc = d.accessor<double, 2>();
  for (int64_t i = 0; i < m; ++i) {
    const double centre = (static_cast<double>(i) + 0.5) * s;
    double total = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      acc[i][j] = keys_cubic((static_cast<double>(j) + 0.5 - centre) / s);
      total += acc[i][j];
    }
    for (int64_t j = 0; j < n; ++j) acc[i][j] /= total;
  }
  return d;
}

BicubicDownsample::BicubicDownsample(const Shape& x_shape, int64_t factor)
    : in_(x_shape),
      s_(factor),
      dh_(bicubic_downsample_matrix(x_shape[1], factor)),
      dw_(bicubic_downsample_matrix(x_shape[2], factor)),
      dh_pinv_(at::linalg_pinv(dh_)),
      dw_pinv_(at::linalg_pinv(dw_)) {}

at::Tensor BicubicDownsample::forward(const at::Tensor& x) const {
  return at::matmul(at::matmul(like(dh_, x), x), like(dw_, x).t());
}

at::Tensor BicubicDownsample::adjoint(const at::Tensor& y) const {
  return at::matmul(at::matmul(like(dh_, y).t(), y), like(dw_, y));
}

at::Tensor BicubicDownsample::pseudo_inverse(const at::Tensor& y) const {
  return at::matmul(at::matmul(like(dh_pinv_, y), y), like(dw_pinv_, y).t());
}

namespace {

class SuperResolutionTask : public Task {
 public:
  SuperResolutionTask(std::string name, const Options& o)
      : name_(std::move(name)), factor_(o.get_int("factor")), sigma_y_(checked_sigma_y(name_, o)) {
    if (factor_ < 1)
      throw ConfigError(task_context(name_) + "factor=" + std::to_string(factor_) + " must be >= 1");
  }
  MeasurementModel build(const Shape& x_shape, at::Generator&) const override {
    check_image_shape(name_, x_shape);
    for (int axis : {1, 2})
      if (x_shape[axis] % factor_ != 0)
        throw ConfigError(task_context(name_) + "factor=" + std::to_string(factor_) + " does not divide the image " +
                          (axis == 1 ? "height " : "width ") + std::to_string(x_shape[axis]) + " (data shape " +
                          shape_string(x_shape) + ")");
    MeasurementModel m;
    if (name_ == "sr_avgpool") m.op = std::make_unique<AvgPoolDownsample>(x_shape, factor_);
    else m.op = std::make_unique<BicubicDownsample>(x_shape, factor_);
    m.noise.sigma_y = sigma_y_;
    return m;
  }

 private:
  std::string name_;
  int64_t factor_;
  double sigma_y_;
};

OptionSpec factor_option() {
  return OptionSpec::integer("factor", 4,
                             "downsampling factor s (must divide height and width); DPS x4, the noise-space "
                             "Langevin paper x8 at 256 and x4 at 64")
      .at_least(1);
}

TaskRegistrar reg_sr_avgpool({"sr_avgpool",
                              "super-resolution: y = average of each s x s block (noise-space Langevin paper)",
                              {factor_option(), sigma_y_option()},
                              [](const Options& o) { return std::make_unique<SuperResolutionTask>("sr_avgpool", o); }});

TaskRegistrar reg_sr_bicubic({"sr_bicubic",
                              "super-resolution: antialiased bicubic downsampling by s (DPS; PIL convention: Keys "
                              "cubic a=-0.5 stretched by s, rows renormalised at the border)",
                              {factor_option(), sigma_y_option()},
                              [](const Options& o) { return std::make_unique<SuperResolutionTask>("sr_bicubic", o); }});

}  // namespace
}  // namespace psbench
