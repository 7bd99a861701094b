#pragma once
// Building blocks shared by the batched samplers (noise-space MALA and pCN in src/samplers/, the
// data-space baselines in baselines/): row bookkeeping of live chains, divergence marking, trace
// averages, the likelihood gradient, an Adam warm start in noise space and dual averaging.
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "samplers/sampler.h"

namespace psbench {

at::Tensor select_rows(const at::Tensor& t, const std::vector<int64_t>& idx);

// Per-step mean of a diagnostic over the chains alive at that step (batches add up).
struct TraceAccumulator {
  std::vector<double> sum;
  std::vector<int64_t> count;
  void add(size_t step, double total, int64_t n);
  std::vector<double> mean() const;
};

// The chains of one batch that are still running. `check` drops the rows of `ok` that are false: their
// chains are marked diverged in `out` (the first one's message is kept) and the rows to keep are
// returned; `live` is updated. Returns true when some row was dropped (the caller then selects the
// returned rows of its state tensors).
struct LiveChains {
  std::vector<int64_t> live;  // chain index of each row
  bool check(const at::Tensor& ok, SamplerOutput& out, const std::function<std::string(int64_t chain)>& message,
             std::vector<int64_t>& keep_rows);
  bool empty() const { return live.empty(); }
  int64_t size() const { return static_cast<int64_t>(live.size()); }
};

// Rows whose tensor is finite everywhere and whose ||t||^2 / numel per row is at most `limit` (a
// tensor [B] or a scalar broadcast). Returns a bool tensor [B].
at::Tensor finite_and_bounded(const at::Tensor& t, const at::Tensor& limit);

// R(x) = ||y - A(x)||^2 / (2 sigma_y^2) per row and its gradient in x: A^T (A x - y) / sigma_y^2 for
// linear operators (no autograd graph), autograd through the operator otherwise. x is detached.
struct PotentialAndGrad {
  at::Tensor value;  // [B]
  at::Tensor grad;   // like x
};
PotentialAndGrad potential_and_grad(const Problem& problem, const at::Tensor& x);

// Adam on ||y - A(Phi(z))||^2 (no prior term), the noise-space warm start of ALGORITHMS.md §1
// (betas 0.9/0.999, eps 1e-8). Counts warm-up NFE (fwd+bwd), appends the mean potential per step to
// `trace`, drops diverging chains through `chains`. Returns the final z of the live rows.
at::Tensor adam_warm_start(const Problem& problem, at::Tensor z, int64_t steps, double lr, double divergence_threshold,
                           LiveChains& chains, SamplerOutput& out, TraceAccumulator& trace,
                           const std::function<std::string(int64_t chain, int64_t step)>& message);

// Dual averaging of a log step size toward a target acceptance rate (Hoffman & Gelman 2014, §3.2.1),
// one value per chain: mu = log(10 h0), gamma = 0.05, t0 = 10, kappa = 0.75.
struct DualAveraging {
  at::Tensor mu, h_bar, log_h, log_h_bar;  // [B]
  int64_t m = 0;
  double target;
  DualAveraging(const at::Tensor& h0, double target_acceptance);
  // Updates with this step's acceptance probabilities [B]; returns the step size to use next.
  at::Tensor update(const at::Tensor& accept_prob);
  at::Tensor final_step() const { return log_h_bar.exp(); }
  void keep_rows(const std::vector<int64_t>& rows);
};

// A Denoiser that routes every call through Problem::denoise, so that code written against the Denoiser
// interface (integrate_pf_ode) counts its evaluations in `count`.
class CountingDenoiser : public Denoiser {
 public:
  CountingDenoiser(const Problem& problem, const std::string& sampler, NfeCount& count, bool with_grad)
      : problem_(problem), inner_(problem.denoiser(sampler)), count_(count), with_grad_(with_grad) {}
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma) const override {
    return problem_.denoise(x, sigma, with_grad_, count_);
  }
  double sigma_min() const override { return inner_.sigma_min(); }
  double sigma_max() const override { return inner_.sigma_max(); }
  double sigma_data() const override { return inner_.sigma_data(); }

 private:
  const Problem& problem_;
  const Denoiser& inner_;
  NfeCount& count_;
  bool with_grad_;
};

// Standard normal draws for `steps` consecutive steps of each chain, drawn as one block per chain from
// its own generator: [B, steps, *shape]. Cheaper than one draw per chain and step, and still
// independent of how chains are batched.
at::Tensor randn_block_per_chain(std::vector<at::Generator>& gens, const std::vector<int64_t>& chains, int64_t steps,
                                 const Shape& shape, at::ScalarType dtype);

// Concatenates the kept samples of the non-diverged chains in chain order ([0, *shape] if none).
at::Tensor assemble_samples(const std::vector<at::Tensor>& per_chain, const std::vector<uint8_t>& diverged,
                            const Shape& data_shape, at::ScalarType dtype);

}  // namespace psbench
