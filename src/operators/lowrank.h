#pragma once
#include "operators/operator.h"

namespace psbench {

class LowRankOperator : public Operator {
 public:
  LowRankOperator(int64_t dim, int64_t d_y, at::Generator& gen);
  std::string name() const override { return "gmm_lowrank"; }
  Shape input_shape() const override { return {dim_}; }
  Shape output_shape() const override { return {d_y_}; }
  at::Tensor forward(const at::Tensor& x) const override;
  bool is_linear() const override { return true; }
  at::Tensor adjoint(const at::Tensor& y) const override;
  bool has_pseudo_inverse() const override { return true; }
  at::Tensor pseudo_inverse(const at::Tensor& y) const override;
  bool has_matrix() const override { return true; }
  at::Tensor matrix() const override { return a_; }
  const at::Tensor& singular_values() const { return s_; }
  // The stored factors: U [d_y, d_y], s, and V = [V_r | completion] by Householder reflections (no d x d matrix).
  bool has_svd() const override { return true; }
  std::shared_ptr<const SvdView> svd() const override;

 private:
  int64_t dim_, d_y_;
  at::Tensor u_, s_, vh_, a_;
};

}  // namespace psbench
