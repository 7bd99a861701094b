#pragma once
// The generative prior, seen only through narrow interfaces (ARCHITECTURE.md "Prior").
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>

#include "core/options.h"
#include "core/registry.h"
#include "data/draw_source.h"
#include "operators/operator.h"

namespace psbench {

// EDM convention: D(x_t, sigma) ~ E[x_0 | x_t = x_0 + sigma n]; score = (D - x_t) / sigma^2.
class Denoiser {
 public:
  virtual ~Denoiser() = default;
  // x: [B, *shape]; sigma: [B] (one noise level per batch element). Differentiable in x.
  virtual at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma) const = 0;
  virtual double sigma_min() const { return 0.002; }
  virtual double sigma_max() const { return 80.0; }
  virtual double sigma_data() const { return 0.5; }
};

// Deterministic, differentiable Phi(z), z ~ N(0, I) -> data.
class Generator {
 public:
  virtual ~Generator() = default;
  virtual Shape latent_shape() const = 0;
  virtual at::Tensor generate(const at::Tensor& z) const = 0;  // [B, *latent] -> [B, *data]
  // Network (or exact-score) evaluations inside one call for one image: the unit of NFE.
  virtual int64_t evaluations_per_call() const = 0;
};

// Consistency function f(x_t, sigma) (Song et al. 2023): a one-step estimate of the probability-flow
// ODE's endpoint x_0 from x_t at noise level sigma, with f(x, sigma_min) ~ x. Differentiable in x.
// A consistency model implements it with one network call; analytic priors integrate the exact ODE.
class ConsistencyFunction {
 public:
  virtual ~ConsistencyFunction() = default;
  // x: [B, *shape]; sigma: [B].
  virtual at::Tensor consistency(const at::Tensor& x, const at::Tensor& sigma) const = 0;
  // Network (or exact-score) evaluations inside one call for one image: the unit of NFE.
  virtual int64_t consistency_evaluations() const { return 1; }
};

// The exact posterior of a linear-Gaussian problem under an analytic prior.
class ExactPosterior {
 public:
  virtual ~ExactPosterior() = default;
  virtual at::Tensor sample(int64_t n, at::Generator& gen) const = 0;  // [n, *shape]
  virtual at::Tensor mean() const = 0;                                  // [*shape]
  virtual at::Tensor marginal_variance() const = 0;                     // [*shape]
  virtual at::Tensor component_weights() const = 0;                     // [K]
  // Index of the mixture component each sample most probably belongs to (for weight errors).
  virtual at::Tensor assign_components(const at::Tensor& x) const = 0;  // [n] int64
};

// name(), data_shape(), can_sample() and sample() (exact draws, the ground truth of the "prior" dataset)
// come from DrawSource: the face of a prior that datasets see.
class Prior : public DrawSource {
 public:
  virtual at::ScalarType dtype() const { return at::kFloat; }
  virtual const Denoiser* denoiser() const { return nullptr; }
  virtual const Generator* generator() const { return nullptr; }
  // nullptr when the prior has no consistency function (DPS-CM needs one).
  virtual const ConsistencyFunction* consistency() const { return nullptr; }
  // nullptr when no closed form exists for this prior/operator pair.
  virtual std::unique_ptr<ExactPosterior> exact_posterior(const Operator& op, double sigma_y,
                                                          const at::Tensor& y) const {
    return nullptr;
  }
  // Provenance to store with results (model files and their sha256, fitted parameters...).
  virtual std::map<std::string, std::string> provenance() const { return {}; }
};

// Prior factories get the resolved options and the experiment seed (for random prior parameters,
// such as the mixture weights, which must be identical in every cell that uses the same prior).
using PriorRegistry = Registry<Prior, uint64_t>;
using PriorRegistrar = Registrar<Prior, uint64_t>;

}  // namespace psbench
