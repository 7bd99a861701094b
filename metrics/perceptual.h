#pragma once
// The LPIPS formula (Zhang et al. 2018) on any network's layers (ALGORITHMS.md §9): per layer l,
// unit-normalise the features of each pixel along channels, square the difference, weight channel c by
// w_lc >= 0, average over pixels, and sum over layers:
//   d(a, b) = sum_l mean_{h,w} sum_c w_lc (f_l(a)_chw / ||f_l(a)_hw|| - f_l(b)_chw / ||f_l(b)_hw||)^2
// (norms with eps 1e-10 as in the lpips package). With w = 1 this is LPIPS's "lin-less" baseline; the
// metric computed on a network other than ImageNet AlexNet/VGG with the learned weights carries that
// network's name and is never called plain LPIPS.
#include <ATen/ATen.h>

#include <vector>

#include "metrics/features.h"

namespace psbench {

// Layers of `images`, unit-normalised along channels (float64).
std::vector<at::Tensor> normalized_layers(const FeatureNetwork& net, const at::Tensor& images);

// Distances between normalised layer sets: a [N, ...], b [N or 1, ...] per layer -> [N]. `weights` is
// empty (all 1) or one non-negative [C_l] vector per layer.
at::Tensor perceptual_distance_layers(const std::vector<at::Tensor>& la, const std::vector<at::Tensor>& lb,
                                      const std::vector<at::Tensor>& weights);

// d(a_i, b_i) for images a [N, C, H, W], b [N or 1, C, H, W] in [-1, 1] -> [N].
at::Tensor perceptual_distance(const FeatureNetwork& net, const at::Tensor& a, const at::Tensor& b,
                               const std::vector<at::Tensor>& weights = {});

// Mean of d(x_i, x_j) over the K (K - 1) / 2 pairs i < j of `samples` [K, C, H, W] (K >= 2).
double mean_pairwise_perceptual_distance(const FeatureNetwork& net, const at::Tensor& samples,
                                         const std::vector<at::Tensor>& weights = {});

// The LPIPS channel weights stored in a TorchScript export (method channel_weights), checked against
// the network's layers: empty for psbench's own networks.
std::vector<at::Tensor> torchscript_channel_weights(const FeatureNetwork& net);

}  // namespace psbench
