#include "operators/operator.h"

#include <stdexcept>

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
