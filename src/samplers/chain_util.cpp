#include "samplers/chain_util.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

namespace psbench {

at::Tensor select_rows(const at::Tensor& t, const std::vector<int64_t>& idx) {
  return t.index_select(0, at::tensor(idx, at::TensorOptions().dtype(at::kLong).device(t.device())));
}

void TraceAccumulator::add(size_t step, double total, int64_t n) {
  if (sum.size() <= step) {
    sum.resize(step + 1, 0.0);
    count.resize(step + 1, 0);
  }
  sum[step] += total;
  count[step] += n;
}

std::vector<double> TraceAccumulator::mean() const {
  std::vector<double> m(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) m[i] = count[i] ? sum[i] / static_cast<double>(count[i]) : 0.0;
  return m;
}

at::Tensor finite_and_bounded(const at::Tensor& t, const at::Tensor& limit) {
  auto f = t.detach().flatten(1);
  auto ms = f.pow(2).mean(1);
  return at::isfinite(f).all(1).logical_and(ms <= limit);
}

PotentialAndGrad potential_and_grad(const Problem& problem, const at::Tensor& x) {
  const double s2 = problem.noise().sigma_y * problem.noise().sigma_y;
  auto xd = x.detach();
  if (problem.op().is_linear()) {
    at::NoGradGuard no_grad;
    auto resid = problem.op().forward(xd) - problem.y();
    auto value = resid.flatten(1).pow(2).sum(1) / (2.0 * s2);
    return {value, problem.op().adjoint(resid).to(xd.scalar_type()).reshape(xd.sizes()) / s2};
  }
  at::AutoGradMode grad_mode(true);
  auto leaf = xd.clone().requires_grad_(true);
  auto value = problem.potential(leaf);
  auto grad = torch::autograd::grad({value.sum()}, {leaf})[0];
  return {value.detach(), grad};
}

DualAveraging::DualAveraging(const at::Tensor& h0, double target_acceptance) : target(target_acceptance) {
  mu = (10.0 * h0).log();
  h_bar = at::zeros_like(h0);
  log_h = h0.log();
  log_h_bar = at::zeros_like(h0);
}

at::Tensor DualAveraging::update(const at::Tensor& accept_prob) {
  const double gamma = 0.05, t0 = 10.0, kappa = 0.75;
  ++m;
  const double md = static_cast<double>(m);
  const double w = 1.0 / (md + t0);
  h_bar = (1.0 - w) * h_bar + w * (target - accept_prob);
  log_h = mu - std::sqrt(md) / gamma * h_bar;
  const double eta = std::pow(md, -kappa);
  log_h_bar = eta * log_h + (1.0 - eta) * log_h_bar;
  return log_h.exp();
}

void DualAveraging::keep_rows(const std::vector<int64_t>& rows) {
  mu = select_rows(mu, rows);
  h_bar = select_rows(h_bar, rows);
  log_h = select_rows(log_h, rows);
  log_h_bar = select_rows(log_h_bar, rows);
}

at::Tensor assemble_samples(const std::vector<at::Tensor>& per_chain, const std::vector<uint8_t>& diverged,
                            const Shape& data_shape, at::ScalarType dtype) {
  std::vector<at::Tensor> all;
  for (size_t c = 0; c < per_chain.size(); ++c)
    if (!diverged[c] && per_chain[c].defined()) all.push_back(per_chain[c]);
  if (!all.empty()) return at::cat(all);
  Shape empty{0};
  empty.insert(empty.end(), data_shape.begin(), data_shape.end());
  return at::empty(empty, at::TensorOptions().dtype(dtype));
}

}  // namespace psbench
