#pragma once
// Diversity of the K posterior samples of one measurement (ALGORITHMS.md §9). All are 0 for K identical
// samples except the Vendi score, whose minimum is 1 (one effective distinct sample).
#include <ATen/ATen.h>

namespace psbench {

// Per-pixel standard deviation over samples [K, ...] (K - 1 denominator) -> [...].
at::Tensor pixel_std_map(const at::Tensor& samples);

// Vendi score exp(-sum_i lambda_i log lambda_i), lambda the eigenvalues of S / K with S_ij the cosine
// similarity of features i and j ([K, D]; S_ii = 1 also for an all-zero feature vector). In [1, K].
double vendi_score(const at::Tensor& features);

// Diversity Score of the noise-space Langevin paper, psbench's protocol (the paper leaves it loose):
//  1. features f_1..f_K (Euclidean distances); n = min(6, K - 1) neighbours;
//  2. cluster C_i = {i} and the n nearest neighbours of i (ties by lower index);
//  3. intra = mean over i of the mean distance from f_i to its n neighbours;
//  4. centroid c_i = mean of the features of C_i; inter = mean over pairs i < j of ||c_i - c_j||;
//  5. score = inter / intra; 0 when inter = 0 (identical samples), and intra is floored at 1e-12 times
//     the mean pairwise distance so that duplicated groups give a large finite value.
double diversity_score(const at::Tensor& features, int64_t neighbours = 6);

}  // namespace psbench
