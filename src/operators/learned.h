#pragma once
// A forward operator loaded from a TorchScript file (the "nonlinear deblur" of ALGORITHMS.md §8 uses a
// learned blur network): y = module.forward(x), batched, differentiable through autograd. Treated as
// nonlinear. The module runs in its own parameter dtype (float32 if it has no parameters); the
// output is returned in the input's dtype.
#include <torch/script.h>

#include "operators/image_ops.h"

namespace psbench {

class LearnedOperator : public Operator {
 public:
  // Loads `path` and checks, with a dummy batch of two zero images, that the module maps [B, *x_shape]
  // to [B, *out] for a fixed `out`; `expected_output` (empty = any) must match `out`. Every failure is
  // a ConfigError naming the option (path or output_shape).
  LearnedOperator(const std::string& path, const Shape& x_shape, const Shape& expected_output,
                  const std::string& expected_text);
  std::string name() const override { return "learned"; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return out_; }
  at::Tensor forward(const at::Tensor& x) const override;
  bool is_linear() const override { return false; }

 private:
  at::Tensor run(const at::Tensor& x) const;
  std::string path_;
  Shape in_, out_;
  at::ScalarType dtype_ = at::kFloat;
  mutable torch::jit::Module module_;  // Module::forward is not const
};

// Parses the output_shape option: "input" (= x_shape), "any" (empty), or "CxHxW"-style sizes.
Shape parse_output_shape(const std::string& text, const Shape& x_shape);

}  // namespace psbench
