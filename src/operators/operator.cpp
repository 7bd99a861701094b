#include "operators/operator.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

#include "core/rng.h"

#include "operators/svd.h"

namespace psbench {

at::Tensor Operator::adjoint(const at::Tensor&) const {
  throw std::logic_error("operator '" + name() + "' is not linear: it has no adjoint");
}
at::Tensor Operator::pseudo_inverse(const at::Tensor&) const {
  throw std::logic_error("operator '" + name() + "' has no pseudo-inverse");
}
at::Tensor Operator::matrix() const {
  throw std::logic_error("operator '" + name() + "' has no explicit matrix");
}

bool Operator::has_svd() const {
  return is_linear() && numel(input_shape()) <= kMaxSvdSize && numel(output_shape()) <= kMaxSvdSize;
}
std::shared_ptr<const SvdView> Operator::svd() const {
  if (!has_svd())
    throw std::logic_error("operator '" + name() + "' has no SVD view (" +
                           (is_linear() ? "more than " + std::to_string(kMaxSvdSize) + " numbers in or out, no structured SVD"
                                        : std::string("not linear")) + ")");
  return dense_svd(*this);
}

namespace {

// sqrt of the largest eigenvalue of the positive semi-definite map M, by power iteration from a fixed
// start (deterministic: same operator, same estimate).
double power_norm(const std::function<at::Tensor(const at::Tensor&)>& m, const Shape& shape) {
  auto gen = make_generator(20241);
  std::vector<int64_t> sizes{1};
  sizes.insert(sizes.end(), shape.begin(), shape.end());
  auto v = at::randn(sizes, gen, at::TensorOptions().dtype(at::kDouble));
  double lambda = 0;
  for (int it = 0; it < 50; ++it) {
    v = v / v.norm();
    auto mv = m(v);
    lambda = (mv * v).sum().item<double>();
    const double n = mv.norm().item<double>();
    if (!(n > 0) || !std::isfinite(n)) break;
    v = mv;
  }
  return std::sqrt(std::max(lambda, 0.0));
}

}  // namespace

double Operator::lipschitz() const {
  const auto shape = input_shape();
  if (is_linear()) {
    if (has_svd()) return svd()->singular_values().max().item<double>();
    return power_norm([this](const at::Tensor& v) { return adjoint(forward(v)); }, shape);
  }
  // J^T J v at x: J v by central differences (eps relative to the point), J^T w as the gradient of <A(x), w>.
  auto at_point = [&](const at::Tensor& x) {
    const double eps = 1e-4 * std::max(1.0, x.norm().item<double>());
    return power_norm(
        [&](const at::Tensor& v) {
          auto jv = ((forward(x + eps * v) - forward(x - eps * v)) / (2 * eps)).detach();
          at::AutoGradMode grad_on(true);
          auto xg = x.clone().requires_grad_(true);
          auto g = torch::autograd::grad({(forward(xg) * jv).sum()}, {xg})[0];
          return g.detach();
        },
        shape);
  };
  std::vector<int64_t> sizes{1};
  sizes.insert(sizes.end(), shape.begin(), shape.end());
  auto gen = make_generator(20242);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  return std::max(at_point(at::zeros(sizes, opts)), at_point(0.5 * at::randn(sizes, gen, opts)));
}

at::Tensor GaussianNoise::sample(const at::Tensor& clean, at::Generator& gen) const {
  return clean + sigma_y * at::randn(clean.sizes(), gen, clean.options());
}

at::Tensor GaussianNoise::potential(const at::Tensor& y, const at::Tensor& ax) const {
  auto r = (ax - y).flatten(1);
  return r.pow(2).sum(1) / (2.0 * sigma_y * sigma_y);
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto v : s) n *= v;
  return n;
}

}  // namespace psbench
