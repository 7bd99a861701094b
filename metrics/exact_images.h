#pragma once
// Metrics against an exact posterior that look at marginals and mixture components. They treat samples
// as flat vectors, so they apply to images ([K, C, H, W]) and to vector data ([K, d]) alike.
#include <ATen/ATen.h>

#include <cstdint>

namespace psbench {

// Order-statistic ranks (1-based) of the central interval with nominal level `level` from K samples:
// i = max(1, round((1 - level)/2 (K + 1))), upper rank K + 1 - i. For K i.i.d. draws of a continuous
// distribution the interval [x_(i), x_(K+1-i)] holds on average (K + 1 - 2i)/(K + 1) of its mass, whatever
// the distribution: the reference against which coverage is judged (0.9005 for K = 200 and level 0.9).
int64_t central_interval_rank(int64_t k, double level);
double central_interval_expected_mass(int64_t k, double level);

// Per coordinate j: the sampler's central interval [x_(i), x_(K+1-i)] from `samples` [K, ...], and the
// fraction of `reference` draws [R, ...] (exact posterior) that fall inside it; returns [D] coverages.
at::Tensor central_interval_coverage(const at::Tensor& samples, const at::Tensor& reference, double level);

// Total variation 0.5 sum_k |pi_k - n_k / n| between exact component weights pi [K] and the fraction of
// samples assigned to each component (assignments [n], values 0..K-1).
double component_weight_tv(const at::Tensor& exact_weights, const at::Tensor& assignments);

}  // namespace psbench
