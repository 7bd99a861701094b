#pragma once
// Double-precision numerics shared across layers. Exact priors, posteriors and metrics compute in
// float64: their results are compared with closed forms at tolerances below float32 rounding.
#include <ATen/ATen.h>

namespace psbench {

inline const auto kF64 = at::TensorOptions().dtype(at::kDouble);

// Symmetric positive-semidefinite square root by eigen-decomposition (negative eigenvalues from
// rounding are clamped to zero).
inline at::Tensor spd_sqrt(const at::Tensor& s) {
  auto [evals, evecs] = at::linalg_eigh(s);
  return evecs.matmul(at::diag(evals.clamp_min(0).sqrt())).matmul(evecs.t());
}

}  // namespace psbench
