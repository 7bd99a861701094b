#include "samplers/sampler.h"

#include <chrono>

namespace psbench {

at::Tensor Problem::generate(const at::Tensor& z, bool with_grad, NfeCount& count) const {
  const auto& g = generator("");
  (with_grad ? count.forward_backward : count.forward) += z.size(0) * g.evaluations_per_call();
  return g.generate(z);
}

at::Tensor Problem::denoise(const at::Tensor& x, const at::Tensor& sigma, bool with_grad, NfeCount& count) const {
  const auto& d = denoiser("");
  (with_grad ? count.forward_backward : count.forward) += x.size(0);
  return d.denoise(x, sigma);
}

at::Tensor Problem::consistency(const at::Tensor& x, const at::Tensor& sigma, bool with_grad,
                                NfeCount& count) const {
  const auto& f = consistency_function("");
  (with_grad ? count.forward_backward : count.forward) += x.size(0) * f.consistency_evaluations();
  return f.consistency(x, sigma);
}

at::Tensor Problem::potential(const at::Tensor& x) const { return noise_.potential(y_, op_.forward(x)); }

const Generator& Problem::generator(const std::string& sampler) const {
  if (!prior_.generator())
    throw ConfigError((sampler.empty() ? std::string("sampler") : "sampler " + sampler) + ": prior '" +
                      prior_.name() + "' has no generator Phi(z)");
  return *prior_.generator();
}

const Denoiser& Problem::denoiser(const std::string& sampler) const {
  if (!prior_.denoiser())
    throw ConfigError((sampler.empty() ? std::string("sampler") : "sampler " + sampler) + ": prior '" +
                      prior_.name() + "' has no denoiser D(x, sigma)");
  return *prior_.denoiser();
}

const ConsistencyFunction& Problem::consistency_function(const std::string& sampler) const {
  if (!prior_.consistency())
    throw ConfigError((sampler.empty() ? std::string("sampler") : "sampler " + sampler) + ": prior '" +
                      prior_.name() + "' has no consistency function f(x, sigma)");
  return *prior_.consistency();
}

Stopwatch::Stopwatch()
    : start_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch()).count()) {}

double Stopwatch::seconds() const {
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::steady_clock::now().time_since_epoch()).count();
  return static_cast<double>(now - start_ns_) * 1e-9;
}

std::string budget_error(const std::string& sampler, int64_t budget, int64_t num_samples, const std::string& why) {
  return std::to_string(budget) + " network evaluations per measurement (" + std::to_string(num_samples) +
         " samples) are too few for " + sampler + ": " + why;
}

BudgetFit Sampler::fit_budget(int64_t, int64_t, const Prior&) const {
  throw ConfigError("this sampler has no budget rule (budget_mode: set); use budget_mode: cap");
}

std::unique_ptr<Sampler> make_sampler(const std::string& name, std::map<std::string, OptionValue> given) {
  const auto& entry = SamplerRegistry::instance().get(name, "sampler");
  return entry.make(resolve_options(name, entry.options, std::move(given)));
}

}  // namespace psbench
