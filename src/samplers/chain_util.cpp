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

bool LiveChains::check(const at::Tensor& ok, SamplerOutput& out,
                       const std::function<std::string(int64_t chain)>& message, std::vector<int64_t>& keep_rows) {
  keep_rows.clear();
  auto okc = ok.to(at::kBool).cpu().contiguous();
  auto acc = okc.accessor<bool, 1>();
  std::vector<int64_t> still;
  for (int64_t i = 0; i < okc.size(0); ++i) {
    if (acc[i]) {
      keep_rows.push_back(i);
      still.push_back(live[i]);
    } else {
      out.diverged[live[i]] = 1;
      if (out.divergence_message.empty()) out.divergence_message = message(live[i]);
    }
  }
  const bool dropped = still.size() != live.size();
  live = std::move(still);
  return dropped;
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

at::Tensor adam_warm_start(const Problem& problem, at::Tensor z, int64_t steps, double lr, double divergence_threshold,
                           LiveChains& chains, SamplerOutput& out, TraceAccumulator& trace,
                           const std::function<std::string(int64_t chain, int64_t step)>& message) {
  at::AutoGradMode grad_mode(true);
  const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const double s2x2 = 2.0 * problem.noise().sigma_y * problem.noise().sigma_y;
  at::Tensor m1 = at::zeros_like(z), m2 = at::zeros_like(z);
  std::vector<int64_t> keep;
  for (int64_t k = 0; k < steps && !chains.empty(); ++k) {
    auto leaf = z.detach().requires_grad_(true);
    auto r = problem.potential(problem.generate(leaf, true, out.warmup_nfe));
    // Gradient of ||y - A(Phi(z))||^2 = 2 sigma_y^2 R.
    auto grad = torch::autograd::grad({r.sum()}, {leaf})[0] * s2x2;
    auto rd = r.detach();
    trace.add(static_cast<size_t>(k), rd.sum().item<double>(), chains.size());
    m1 = beta1 * m1 + (1 - beta1) * grad;
    m2 = beta2 * m2 + (1 - beta2) * grad * grad;
    const double bc1 = 1 - std::pow(beta1, k + 1), bc2 = 1 - std::pow(beta2, k + 1);
    z = z.detach() - lr * (m1 / bc1) / ((m2 / bc2).sqrt() + eps);
    auto ok = finite_and_bounded(z, at::scalar_tensor(divergence_threshold, z.options())).logical_and(at::isfinite(rd));
    if (chains.check(ok, out, [&](int64_t c) { return message(c, k); }, keep)) {
      if (chains.empty()) break;
      z = select_rows(z, keep);
      m1 = select_rows(m1, keep);
      m2 = select_rows(m2, keep);
    }
  }
  return z.detach();
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

at::Tensor randn_block_per_chain(std::vector<at::Generator>& gens, const std::vector<int64_t>& chains, int64_t steps,
                                 const Shape& shape, at::ScalarType dtype) {
  Shape block{steps};
  block.insert(block.end(), shape.begin(), shape.end());
  return randn_per_chain(gens, chains, block, dtype);
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
