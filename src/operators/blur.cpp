// Blur tasks `gaussian_blur` and `motion_blur` (ALGORITHMS.md §8; docs/tasks.md explains the scaling
// of the papers' 61x61 kernels to small images).
#include "operators/blur.h"

#include <cmath>
#include <stdexcept>

#include "core/rng.h"
#include "operators/svd.h"

namespace psbench {

at::Tensor gaussian_kernel1d(int64_t size, double std) {
  const int64_t r = size / 2;
  auto t = at::arange(-r, r + 1, at::kDouble);
  auto g = at::exp(-0.5 * t * t / (std * std));
  return g / g.sum();
}

at::Tensor motion_kernel(int64_t size, double intensity, at::Generator& gen) {
  const int64_t steps = 8 * size;
  auto opts = at::TensorOptions().dtype(at::kDouble);
  const double heading0 = 2.0 * M_PI * at::rand({1}, gen, opts).item<double>();
  auto wiggle = at::randn({steps}, gen, opts);
  auto turn_draw = at::rand({steps}, gen, opts);
  auto turn_angle = at::rand({steps}, gen, opts);
  auto wig = wiggle.accessor<double, 1>(), td = turn_draw.accessor<double, 1>(), ta = turn_angle.accessor<double, 1>();

  // Unit-speed path: points p_0 = 0, p_{t+1} = p_t + (cos h_t, sin h_t).
  std::vector<double> px(steps + 1, 0.0), py(steps + 1, 0.0);
  double heading = heading0;
  for (int64_t t = 0; t < steps; ++t) {
    px[t + 1] = px[t] + std::cos(heading);
    py[t + 1] = py[t] + std::sin(heading);
    heading += intensity * (M_PI / 4.0) * wig[t];
    if (td[t] < intensity / 20.0) heading += M_PI * (2.0 * ta[t] - 1.0);
  }
  double mx = 0, my = 0;
  for (int64_t t = 0; t <= steps; ++t) { mx += px[t]; my += py[t]; }
  mx /= static_cast<double>(steps + 1);
  my /= static_cast<double>(steps + 1);
  double extent = 0;
  for (int64_t t = 0; t <= steps; ++t) {
    px[t] -= mx;
    py[t] -= my;
    extent = std::max({extent, std::abs(px[t]), std::abs(py[t])});
  }
  const double half = static_cast<double>(size - 1) / 2.0;
  const double scale = extent > 0 ? half / extent : 0.0;

  auto k = at::zeros({size, size}, opts);
  auto acc = k.accessor<double, 2>();
  auto splat = [&](double x, double y) {
    const double r = half + y, c = half + x;
    const auto r0 = static_cast<int64_t>(std::floor(r)), c0 = static_cast<int64_t>(std::floor(c));
    const double fr = r - static_cast<double>(r0), fc = c - static_cast<double>(c0);
    for (int dr = 0; dr < 2; ++dr)
      for (int dc = 0; dc < 2; ++dc) {
        const double w = (dr ? fr : 1 - fr) * (dc ? fc : 1 - fc);
        const int64_t rr = std::clamp<int64_t>(r0 + dr, 0, size - 1), cc = std::clamp<int64_t>(c0 + dc, 0, size - 1);
        if (w > 0) acc[rr][cc] += w;
      }
  };
  // Every segment has length `scale`; sub-sample it at <= 1/4 pixel so the path leaves no gaps.
  const auto sub = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(scale / 0.25)));
  for (int64_t t = 0; t < steps; ++t)
    for (int64_t j = 0; j < sub; ++j) {
      const double f = static_cast<double>(j) / static_cast<double>(sub);
      splat(scale * (px[t] + f * (px[t + 1] - px[t])), scale * (py[t] + f * (py[t + 1] - py[t])));
    }
  splat(scale * px[steps], scale * py[steps]);
  return k / k.sum();
}

ConvolutionBlur::ConvolutionBlur(std::string name, const Shape& x_shape, at::Tensor kernel2d, Padding padding,
                                 double lambda, at::Tensor separable_rows, at::Tensor separable_cols)
    : name_(std::move(name)),
      in_(x_shape),
      kernel_(kernel2d.to(at::kDouble).contiguous()),
      rows_(separable_rows.defined() ? separable_rows.to(at::kDouble) : at::Tensor()),
      cols_(separable_cols.defined() ? separable_cols.to(at::kDouble) : at::Tensor()),
      grid_(x_shape[1], x_shape[2], kernel_.size(0) / 2, kernel_.size(1) / 2, padding),
      lambda_(lambda) {
  if (kernel_.dim() != 2 || kernel_.size(0) % 2 == 0 || kernel_.size(1) % 2 == 0)
    throw std::invalid_argument("ConvolutionBlur: kernel must be 2-D with odd sizes");
  if (rows_.defined() != cols_.defined())
    throw std::invalid_argument("ConvolutionBlur: give both separable factors or neither");
  if (rows_.defined() && !at::allclose(at::outer(rows_, cols_), kernel_, 1e-12, 1e-14))
    throw std::invalid_argument("ConvolutionBlur: kernel is not the outer product of its separable factors");
}

at::Tensor ConvolutionBlur::as_planes(const at::Tensor& t) const {
  return t.reshape({-1, 1, t.size(-2), t.size(-1)});
}

at::Tensor ConvolutionBlur::forward(const at::Tensor& x) const {
  auto z = grid_.pad(as_planes(x));
  at::Tensor out;
  if (rows_.defined()) {
    auto kr = rows_.to(x.device(), x.scalar_type()).view({1, 1, -1, 1});
    auto kc = cols_.to(x.device(), x.scalar_type()).view({1, 1, 1, -1});
    out = at::conv2d(at::conv2d(z, kr), kc);
  } else {
    // Valid correlation through the DFT of the padded size: for output (i, j) with i < H, j < W the
    // circular correlation never wraps, so cropping it is exact. (A direct conv2d with a 61x61 kernel
    // builds a 61^2-fold im2col buffer: gigabytes at 256x256.)
    const int64_t ph = z.size(-2), pw = z.size(-1);
    auto spectrum = at::fft_rfft2(z) * at::conj(kernel_spectrum(ph, pw, x));
    out = at::fft_irfft2(spectrum, std::vector<int64_t>{ph, pw}).narrow(-2, 0, in_[1]).narrow(-1, 0, in_[2]);
  }
  return out.reshape(x.sizes());
}

at::Tensor ConvolutionBlur::adjoint(const at::Tensor& y) const {
  auto planes = as_planes(y);
  at::Tensor z;
  if (rows_.defined()) {
    auto kr = rows_.to(y.device(), y.scalar_type()).view({1, 1, -1, 1});
    auto kc = cols_.to(y.device(), y.scalar_type()).view({1, 1, 1, -1});
    z = at::conv_transpose2d(at::conv_transpose2d(planes, kc), kr);
  } else {
    // Adjoint of crop ∘ circular correlation: zero-fill to the padded size, then circular convolution.
    const int64_t ph = in_[1] + 2 * (kernel_.size(0) / 2), pw = in_[2] + 2 * (kernel_.size(1) / 2);
    auto filled = at::constant_pad_nd(planes, {0, pw - in_[2], 0, ph - in_[1]}, 0.0);
    z = at::fft_irfft2(at::fft_rfft2(filled) * kernel_spectrum(ph, pw, y), std::vector<int64_t>{ph, pw});
  }
  return grid_.pad_adjoint(z).reshape(y.sizes());
}

at::Tensor ConvolutionBlur::kernel_spectrum(int64_t ph, int64_t pw, const at::Tensor& like) const {
  auto k = at::constant_pad_nd(kernel_.to(like.device(), like.scalar_type()),
                               {0, pw - kernel_.size(1), 0, ph - kernel_.size(0)}, 0.0);
  return at::fft_rfft2(k);
}

at::Tensor ConvolutionBlur::pseudo_inverse(const at::Tensor& y) const { return tikhonov_solve(*this, y, lambda_); }

namespace {

// Q_R (x) Q_C on every channel of [C, H, W], then a permutation of the coefficients: spectral coordinate
// i is coefficient perm[i] of the flattened [C, H, W] array Q_R^T X Q_C.
class KroneckerOrthogonal : public Orthogonal {
 public:
  KroneckerOrthogonal(const Shape& in, at::Tensor qr, at::Tensor qc, std::shared_ptr<const Orthogonal> perm)
      : in_(in), qr_(std::move(qr)), qc_(std::move(qc)), perm_(std::move(perm)) {}
  int64_t dim() const override { return numel(in_); }
  at::Tensor apply_transpose(const at::Tensor& v) const override {
    auto x = v.reshape({v.size(0), in_[0], in_[1], in_[2]});
    auto coef = qr_.t().to(v.scalar_type()).matmul(x).matmul(qc_.to(v.scalar_type()));
    return perm_->apply_transpose(coef.reshape({v.size(0), -1}));
  }
  at::Tensor apply(const at::Tensor& c) const override {
    auto coef = perm_->apply(c).reshape({c.size(0), in_[0], in_[1], in_[2]});
    return qr_.to(c.scalar_type()).matmul(coef).matmul(qc_.t().to(c.scalar_type())).reshape({c.size(0), -1});
  }

 private:
  Shape in_;
  at::Tensor qr_, qc_;
  std::shared_ptr<const Orthogonal> perm_;
};

}  // namespace

bool ConvolutionBlur::has_svd() const { return rows_.defined() || Operator::has_svd(); }

std::shared_ptr<const SvdView> ConvolutionBlur::svd() const {
  if (!rows_.defined()) return Operator::svd();
  // The 1-D operators from the 2-D one: the padding maps indices and the 1-D kernels sum to one, so
  // A(e_i 1^T) = R e_i (C 1)^T = R e_i 1^T and A(1 e_j^T) = 1 (C e_j)^T.
  const int64_t h = in_[1], w = in_[2];
  auto opts = at::TensorOptions().dtype(at::kDouble);
  auto col_probe = at::eye(h, opts).unsqueeze(-1).expand({h, h, w}).unsqueeze(1).expand({h, in_[0], h, w});
  auto row_probe = at::eye(w, opts).unsqueeze(1).expand({w, h, w}).unsqueeze(1).expand({w, in_[0], h, w});
  auto r = forward(col_probe.contiguous()).select(1, 0).select(-1, 0).t().contiguous();  // [H, H]: column i = R e_i
  auto c = forward(row_probe.contiguous()).select(1, 0).select(1, 0).t().contiguous();   // [W, W]: column j = C e_j
  // The premise (kernels summing to one, an index-mapping pad) checked on a random image.
  auto gen = make_generator(7);
  auto x = at::randn({1, in_[0], h, w}, gen, opts);
  auto err = (r.matmul(x).matmul(c.t()) - forward(x)).abs().max().item<double>();
  if (!(err <= 1e-9 * (1.0 + x.abs().max().item<double>())))
    throw std::logic_error("operator '" + name_ + "': not separable as R X C^T (max error " + std::to_string(err) + ")");
  auto [ur, sr, vhr] = at::linalg_svd(r);
  auto [uc, sc, vhc] = at::linalg_svd(c);
  auto s = at::outer(sr, sc).unsqueeze(0).expand({in_[0], h, w}).flatten();
  auto order = std::get<1>(at::sort(s, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  auto sorted = s.index_select(0, order);
  const int64_t rank = numerical_rank(sorted);
  auto perm = permutation_orthogonal(order);
  return std::make_shared<SvdView>(in_, in_, sorted.narrow(0, 0, rank),
                                   std::make_shared<KroneckerOrthogonal>(in_, ur, uc, perm),
                                   std::make_shared<KroneckerOrthogonal>(in_, vhr.t().contiguous(), vhc.t().contiguous(), perm));
}

namespace {

// Regularisation of the blur pseudo-inverse: the MAP estimate under x ~ N(0, kPixelScale^2 I).
double blur_lambda(double sigma_y) { return (sigma_y * sigma_y) / (kPixelScale * kPixelScale); }

int64_t checked_kernel_size(const std::string& task, int64_t k, const Shape& x_shape) {
  const int64_t side = std::min(x_shape[1], x_shape[2]);
  if (k % 2 == 0)
    throw ConfigError(task_context(task) + "kernel_size=" + std::to_string(k) + " must be odd");
  if (k > side)
    throw ConfigError(task_context(task) + "kernel_size=" + std::to_string(k) + " is larger than the image side " +
                      std::to_string(side) + " (data shape " + shape_string(x_shape) + ")");
  return k;
}

class GaussianBlurTask : public Task {
 public:
  explicit GaussianBlurTask(const Options& o)
      : kernel_size_(o.get_int("kernel_size")),
        std_(o.get_real("std")),
        padding_(parse_padding(o.get_string("padding"))),
        sigma_y_(checked_sigma_y("gaussian_blur", o)) {
    if (kernel_size_ < 0)
      throw ConfigError(task_context("gaussian_blur") + "kernel_size=" + std::to_string(kernel_size_) +
                        " must be >= 0 (0 = auto)");
    if (!(std_ >= 0) || !std::isfinite(std_))
      throw ConfigError(task_context("gaussian_blur") + "std=" + format_value(std_) + " must be >= 0 (0 = auto)");
  }
  MeasurementModel build(const Shape& x_shape, at::Generator&) const override {
    check_image_shape("gaussian_blur", x_shape);
    const int64_t side = std::min(x_shape[1], x_shape[2]);
    // Paper: 61x61, std 3 at 256. std scales with the side but never below one pixel (docs/tasks.md).
    const double std = std_ > 0 ? std_ : std::max(1.0, scale_from_paper(3.0, side));
    int64_t k = kernel_size_;
    if (k == 0)
      k = std::min(largest_odd_at_most(side),
                   smallest_odd_at_least(std::max(scale_from_paper(61.0, side), 2.0 * std::ceil(3.0 * std) + 1.0)));
    checked_kernel_size("gaussian_blur", k, x_shape);
    auto g = gaussian_kernel1d(k, std);
    MeasurementModel m;
    m.op = std::make_unique<ConvolutionBlur>("gaussian_blur", x_shape, at::outer(g, g), padding_, blur_lambda(sigma_y_),
                                             g, g);
    m.noise.sigma_y = sigma_y_;
    return m;
  }

 private:
  int64_t kernel_size_;
  double std_;
  Padding padding_;
  double sigma_y_;
};

class MotionBlurTask : public Task {
 public:
  explicit MotionBlurTask(const Options& o)
      : kernel_size_(o.get_int("kernel_size")),
        intensity_(o.get_real("intensity")),
        padding_(parse_padding(o.get_string("padding"))),
        sigma_y_(checked_sigma_y("motion_blur", o)) {
    if (kernel_size_ < 0)
      throw ConfigError(task_context("motion_blur") + "kernel_size=" + std::to_string(kernel_size_) +
                        " must be >= 0 (0 = auto)");
    if (!(intensity_ >= 0 && intensity_ <= 1))
      throw ConfigError(task_context("motion_blur") + "intensity=" + format_value(intensity_) + " must be in [0, 1]");
  }
  MeasurementModel build(const Shape& x_shape, at::Generator& gen) const override {
    check_image_shape("motion_blur", x_shape);
    const int64_t side = std::min(x_shape[1], x_shape[2]);
    int64_t k = kernel_size_;
    if (k == 0) k = std::min(largest_odd_at_most(side), std::max<int64_t>(3, smallest_odd_at_least(scale_from_paper(61.0, side))));
    checked_kernel_size("motion_blur", k, x_shape);
    MeasurementModel m;
    // The kernel is drawn here, once per measurement, and frozen inside the operator.
    m.op = std::make_unique<ConvolutionBlur>("motion_blur", x_shape, motion_kernel(k, intensity_, gen), padding_,
                                             blur_lambda(sigma_y_));
    m.noise.sigma_y = sigma_y_;
    return m;
  }

 private:
  int64_t kernel_size_;
  double intensity_;
  Padding padding_;
  double sigma_y_;
};

OptionSpec padding_option() {
  return OptionSpec::choice("padding", "reflect", {"reflect", "symmetric"},
                            "boundary extension: reflect = whole-sample mirror (DPS code, torch ReflectionPad2d, "
                            "scipy 'mirror'); symmetric = half-sample mirror (scipy 'reflect')");
}

TaskRegistrar reg_gaussian_blur(
    {"gaussian_blur", "Gaussian deblurring: y = normalised Gaussian kernel correlated with the padded image",
     {OptionSpec::integer("kernel_size", 0,
                          "odd kernel side in pixels; 0 = auto: 61 * side / 256 rounded up to odd, at least "
                          "2 ceil(3 std) + 1, at most the image side")
          .at_least(0),
      OptionSpec::real("std", 0.0, "kernel standard deviation in pixels; 0 = auto: max(1, 3 * side / 256)").at_least(0),
      padding_option(), sigma_y_option()},
     [](const Options& o) { return std::make_unique<GaussianBlurTask>(o); }});

TaskRegistrar reg_motion_blur(
    {"motion_blur",
     "motion deblurring: a random camera-shake kernel drawn once per measurement from the task's generator",
     {OptionSpec::integer("kernel_size", 0,
                          "odd kernel side in pixels; 0 = auto: 61 * side / 256 rounded up to odd, at least 3, at "
                          "most the image side")
          .at_least(0),
      OptionSpec::real("intensity", 0.5, "shakiness of the trajectory in [0, 1] (0 = straight line); DPS 0.5")
          .at_least(0)
          .at_most(1),
      padding_option(), sigma_y_option()},
     [](const Options& o) { return std::make_unique<MotionBlurTask>(o); }});

}  // namespace
}  // namespace psbench
