#include "operators/operator.h"

#include <stdexcept>

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
