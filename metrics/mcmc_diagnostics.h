#pragma once
// MCMC diagnostics of one scalar quantity over several chains, after Vehtari, Gelman, Simpson, Carpenter
// and Bürkner (2021), "Rank-normalization, folding, and localization: an improved R-hat for assessing
// convergence of MCMC", Bayesian Analysis 16(2) (cited below as VGSCB), with Geyer's (1992) initial
// monotone sequence for the autocorrelation sum. Free functions that know nothing of samplers; the
// metrics ess_bulk, ess_tail, rhat and iat (metrics/mcmc_diagnostics.cpp) apply them to scalar summaries
// of a measurement's chain-major samples.
//
// Every function takes `draws` [M chains, N draws] (any floating dtype; computed in float64) and needs
// N >= 4 (each chain is split into two halves of floor(N/2) draws, the middle draw of an odd N dropped);
// rhat also needs M >= 2. A violation is std::invalid_argument. Draws that are all equal have no
// variance to judge: the result is then NaN, and callers decide what that means (the metrics report the
// measurement as not scorable, never a NaN value).
#include <ATen/ATen.h>

#include <cstdint>

namespace psbench {

// [M, N] -> [2M, floor(N/2)]: the first and the last floor(N/2) draws of each chain as two chains.
at::Tensor split_chains(const at::Tensor& draws);

// Rank normalisation (VGSCB): pooled ranks r of all S draws (ties get their average rank),
// z = Phi^-1((r - 3/8) / (S + 1/4)); same shape as `draws`.
at::Tensor rank_normalize(const at::Tensor& draws);

// Per-chain autocovariance gamma_{m,t} = (1/N) sum_{i=0}^{N-1-t} (x_i - mean)(x_{i+t} - mean), t = 0..N-1,
// by FFT (zero-padded to at least 2N, so no circular wrap-around): [M, N] -> [M, N].
at::Tensor autocovariance(const at::Tensor& chains);
// The same by the direct O(N^2) sum (reference for tests).
at::Tensor autocovariance_direct(const at::Tensor& chains);

// Multi-chain autocorrelation (VGSCB; Gelman et al., BDA3 §11.5) of the chains as given (no splitting, no ranks):
// rho_t = 1 - (W - mean_m s_m^2 rho_{t,m}) / var+, with s_m^2 the unbiased within-chain variance,
// W = mean_m s_m^2, var+ = (N-1)/N W + B/N, B/N = the unbiased variance of the chain means.
at::Tensor multichain_autocorrelation(const at::Tensor& chains);

// tau = 1 + 2 sum_{t>=1} rho_t truncated by Geyer's initial monotone sequence: P_k = rho_{2k} + rho_{2k+1}
// summed while positive, each P_k replaced by min(P_k, P_{k-1}); tau = -1 + 2 sum_k P_k, bounded below by
// 1 / log10(M N) (as Stan does: antithetic chains cannot claim more than M N log10(M N) effective draws).
// Of the chains as given.
double autocorrelation_time_basic(const at::Tensor& chains);
// M N / autocorrelation_time_basic.
double ess_basic(const at::Tensor& chains);
// Potential scale reduction of the chains as given: sqrt(var+ / W) (+inf when every chain is constant
// but the chains differ).
double rhat_basic(const at::Tensor& chains);

// Integrated autocorrelation time of the split chains (raw values): the `tau` in ESS = M N / tau.
double integrated_autocorrelation_time(const at::Tensor& draws);
// Bulk ESS (VGSCB): ess_basic of the rank-normalised split chains.
double ess_bulk(const at::Tensor& draws);
// Tail ESS (VGSCB): min over alpha in {0.05, 0.95} of ess_basic of the split chains of the indicator
// I(x <= q_alpha), q_alpha the pooled draws' quantile (linear interpolation between order statistics).
double ess_tail(const at::Tensor& draws);
// Split R-hat (VGSCB): max(rhat_basic of the rank-normalised split chains, rhat_basic of the
// rank-normalised split chains of the folded draws |x - median|).
double split_rhat(const at::Tensor& draws);

// The pooled draws' alpha-quantile, linear interpolation between order statistics (R type 7, numpy).
double pooled_quantile(const at::Tensor& draws, double alpha);

}  // namespace psbench
