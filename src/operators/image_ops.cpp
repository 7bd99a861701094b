#include "operators/image_ops.h"

#include <cmath>
#include <stdexcept>

namespace psbench {

std::string task_context(const std::string& task) { return "task " + task + ": "; }

OptionSpec sigma_y_option() {
  return OptionSpec::real("sigma_y", kDefaultSigmaY,
                          "Gaussian measurement noise sigma_y (images in [-1, 1]); DPS 0.05, the noise-space "
                          "Langevin paper 0.1")
      .above(0);
}

double checked_sigma_y(const std::string& task, const Options& o) {
  const double s = o.get_real("sigma_y");
  if (!(s > 0) || !std::isfinite(s))
    throw ConfigError(task_context(task) + "sigma_y=" + format_value(s) + " must be a finite number > 0");
  return s;
}

void check_image_shape(const std::string& task, const Shape& x_shape) {
  bool ok = x_shape.size() == 3;
  for (auto v : x_shape) ok = ok && v >= 1;
  if (!ok)
    throw ConfigError(task_context(task) + "needs images of shape [C, H, W], got data shape " +
                      shape_string(x_shape));
}

double scale_from_paper(double paper_value, int64_t side) {
  return paper_value * static_cast<double>(side) / kPaperSide;
}

int64_t smallest_odd_at_least(double v) {
  auto k = static_cast<int64_t>(std::ceil(v - 1e-9));
  if (k < 1) k = 1;
  return k % 2 == 1 ? k : k + 1;
}

int64_t largest_odd_at_most(int64_t n) { return n % 2 == 1 ? n : n - 1; }

Padding parse_padding(const std::string& name) {
  if (name == "reflect") return Padding::Reflect;
  if (name == "symmetric") return Padding::Symmetric;
  throw ConfigError("padding '" + name + "' is not one of reflect, symmetric");
}

int64_t fold_index(int64_t i, int64_t n, Padding mode) {
  if (n == 1) return 0;
  if (mode == Padding::Reflect) {
    const int64_t period = 2 * (n - 1);
    int64_t m = ((i % period) + period) % period;
    return m < n ? m : period - m;
  }
  const int64_t period = 2 * n;
  int64_t m = ((i % period) + period) % period;
  return m < n ? m : period - 1 - m;
}

namespace {
at::Tensor fold_table(int64_t n, int64_t pad, Padding mode) {
  auto t = at::empty({n + 2 * pad}, at::kLong);
  auto a = t.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n + 2 * pad; ++i) a[i] = fold_index(i - pad, n, mode);
  return t;
}
}  // namespace

PaddedGrid::PaddedGrid(int64_t h, int64_t w, int64_t pad_h, int64_t pad_w, Padding mode)
    : h_(h), w_(w), rows_(fold_table(h, pad_h, mode)), cols_(fold_table(w, pad_w, mode)) {}

at::Tensor PaddedGrid::pad(const at::Tensor& x) const {
  auto rows = rows_.to(x.device()), cols = cols_.to(x.device());
  return x.index_select(-2, rows).index_select(-1, cols);
}

at::Tensor PaddedGrid::pad_adjoint(const at::Tensor& z) const {
  // Adjoint of the two gathers, in reverse order: each padded sample is added back to its source.
  auto rows = rows_.to(z.device()), cols = cols_.to(z.device());
  auto sizes = z.sizes().vec();
  sizes.back() = w_;
  auto folded_cols = at::zeros(sizes, z.options()).index_add(-1, cols, z);
  sizes[sizes.size() - 2] = h_;
  return at::zeros(sizes, z.options()).index_add(-2, rows, folded_cols);
}

at::Tensor probe_matrix(const Operator& op) {
  if (!op.is_linear()) throw std::logic_error("probe_matrix: operator '" + op.name() + "' is not linear");
  const Shape in = op.input_shape();
  const int64_t n = numel(in), m = numel(op.output_shape());
  auto a = at::empty({m, n}, at::kDouble);
  const int64_t chunk = 256;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    auto basis = at::zeros({len, n}, at::kDouble);
    basis.narrow(1, start, len).copy_(at::eye(len, at::kDouble));
    Shape batched{len};
    batched.insert(batched.end(), in.begin(), in.end());
    auto cols = op.forward(basis.reshape(batched)).reshape({len, m});
    a.narrow(1, start, len).copy_(cols.t());
  }
  return a;
}

at::Tensor LinearImageOperator::matrix() const {
  if (!has_matrix())
    throw std::logic_error("operator '" + name() + "': input " + shape_string(input_shape()) +
                           " is too large for an explicit matrix");
  return probe_matrix(*this);
}

at::Tensor tikhonov_solve(const Operator& op, const at::Tensor& y, double lambda, int64_t max_iter, double rel_tol) {
  if (!op.is_linear()) throw std::logic_error("tikhonov_solve: operator '" + op.name() + "' is not linear");
  auto yd = y.to(at::kDouble);
  auto b = op.adjoint(yd);
  const int64_t batch = b.size(0);
  auto dot = [batch](const at::Tensor& u, const at::Tensor& v) { return (u * v).reshape({batch, -1}).sum(1); };
  auto per_sample = [&](const at::Tensor& s) {
    Shape shape(static_cast<size_t>(b.dim()), 1);
    shape[0] = batch;
    return s.reshape(shape);
  };
  auto normal = [&](const at::Tensor& v) { return op.adjoint(op.forward(v)) + lambda * v; };
  auto x = at::zeros_like(b);
  auto r = b.clone();
  auto p = r.clone();
  auto rs = dot(r, r);
  const auto target = dot(b, b) * (rel_tol * rel_tol);
  for (int64_t it = 0; it < max_iter; ++it) {
    if (rs.le(target).all().item<bool>()) break;
    auto ap = normal(p);
    auto pap = dot(p, ap);
    // Converged (or zero right-hand side) elements get zero steps instead of 0/0.
    auto alpha = at::where(pap.gt(0), rs / pap, at::zeros_like(pap));
    x = x + per_sample(alpha) * p;
    r = r - per_sample(alpha) * ap;
    auto rs_new = dot(r, r);
    auto beta = at::where(rs.gt(0), rs_new / rs, at::zeros_like(rs));
    p = r + per_sample(beta) * p;
    rs = rs_new;
  }
  return x.to(y.scalar_type());
}

}  // namespace psbench
