#include "samplers/kernel.h"

#include "operators/svd.h"
#include "samplers/driver.h"

namespace psbench {

void check_needs(const Needs& needs, const std::string& sampler, const Prior& prior, const Operator* op) {
  const std::string who = "sampler " + sampler + ": ";
  if (needs.generator && !prior.generator())
    throw ConfigError(who + "prior '" + prior.name() + "' has no generator Phi(z)");
  if (needs.denoiser && !prior.denoiser())
    throw ConfigError(who + "prior '" + prior.name() + "' has no denoiser D(x, sigma)");
  if (needs.consistency && !prior.consistency())
    throw ConfigError(who + "prior '" + prior.name() + "' has no consistency function f(x, sigma)");
  if (needs.linear_operator && op && !op->is_linear())
    throw ConfigError(who + "needs a linear operator, and task operator '" + op->name() + "' is not linear");
  if (needs.svd && op && !op->has_svd())
    throw ConfigError(who + "needs the SVD of the operator (A = U diag(s) V^T), and task operator '" + op->name() +
                      "' has none (" +
                      (op->is_linear() ? "no structured SVD, and more than " + std::to_string(kMaxSvdSize) +
                                             " numbers in or out for a dense one"
                                       : std::string("not linear")) +
                      ")");
}

at::Tensor ChainRng::normal(const Shape& shape) const {
  std::vector<at::Tensor> rows;
  rows.reserve(rows_.size());
  for (auto c : rows_) rows.push_back(at::randn(shape, gens_[c], at::TensorOptions().dtype(dtype_)));
  return at::stack(rows);
}

at::Tensor ChainRng::normal_block(int64_t steps, const Shape& shape) const {
  Shape block{steps};
  block.insert(block.end(), shape.begin(), shape.end());
  return normal(block);
}

void ChainRng::fill_normal_block(at::Tensor& block, int64_t steps, const Shape& shape) const {
  std::vector<int64_t> sizes{rows(), steps};
  sizes.insert(sizes.end(), shape.begin(), shape.end());
  if (!block.defined() || block.sizes() != at::IntArrayRef(sizes) || block.scalar_type() != dtype_ ||
      !block.is_contiguous() || !block.device().is_cpu())
    block = at::empty(sizes, at::TensorOptions().dtype(dtype_));
  // at::randn(shape, gen) is empty(shape).normal_(0, 1, gen): on each chain's contiguous row, the same draws.
  for (size_t i = 0; i < rows_.size(); ++i) block.select(0, static_cast<int64_t>(i)).normal_(0.0, 1.0, gens_[rows_[i]]);
}

at::Tensor ChainRng::uniform() const {
  std::vector<at::Tensor> us;
  us.reserve(rows_.size());
  for (auto c : rows_) us.push_back(at::rand({1}, gens_[c], at::TensorOptions().dtype(at::kDouble)));
  return at::cat(us);
}

at::Tensor keep_defined_rows(const at::Tensor& t, const at::Tensor& rows) {
  return t.defined() ? t.index_select(0, rows.to(t.device())) : t;
}

const OptionSchema<BatchOptions>& BatchOptions::schema() {
  static const auto s = [] {
    OptionSchema<BatchOptions> s;
    s.integer(&BatchOptions::batch_size, "batch_size", 0, "chains evaluated together (0 = all); results do not depend on it")
        .at_least(0)
        .execution();
    return s;
  }();
  return s;
}

}  // namespace psbench
