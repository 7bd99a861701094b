#pragma once
// Building blocks of the driver and the kernels: trace averages, divergence bounds, the likelihood
// gradient, dual averaging, a counting denoiser and sample assembly.
#include <ATen/ATen.h>

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

// Concatenates the kept samples of the non-diverged chains in chain order ([0, *shape] if none).
at::Tensor assemble_samples(const std::vector<at::Tensor>& per_chain, const std::vector<uint8_t>& diverged,
                            const Shape& data_shape, at::ScalarType dtype);

}  // namespace psbench
