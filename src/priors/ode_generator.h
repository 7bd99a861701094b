#pragma once
// Phi(z) = deterministic probability-flow ODE of a denoiser, integrated with Heun's method on the
// Karras grid (EDM, rho = 7) from sigma_max down to 0. Differentiable through autograd.
#include "nn/karras.h"
#include "priors/prior.h"

namespace psbench {

// Integration of the probability-flow ODE from (x, sigma_b) to 0, per row b, on a Karras grid of
// `steps` points from sigma_b down to min(sigma_min, sigma_b) followed by an Euler step to 0.
// Heun: 2 * steps - 1 denoiser evaluations; with every sigma_b = sigma_max this is the OdeGenerator's
// integration. Euler (heun = false): `steps` evaluations; one step gives the Tweedie mean D(x, sigma_b), and
// few steps stay stable where Heun's corrector at sigma_min after a long step does not.
// x: [B, *shape], sigma: [B]. Differentiable in x.
at::Tensor integrate_pf_ode(const Denoiser& denoiser, at::Tensor x, const at::Tensor& sigma, int64_t steps,
                            double rho = 7.0, bool heun = true);

// The consistency function of a prior with an exact (or trusted) denoiser: f(x, sigma) = the
// probability-flow ODE solved from sigma to 0 with `steps` Heun steps (integrate_pf_ode).
class OdeConsistency : public ConsistencyFunction {
 public:
  OdeConsistency(const Denoiser& denoiser, int64_t steps, double rho = 7.0)
      : denoiser_(denoiser), steps_(steps), rho_(rho) {}
  at::Tensor consistency(const at::Tensor& x, const at::Tensor& sigma) const override {
    return integrate_pf_ode(denoiser_, x, sigma, steps_, rho_);
  }
  int64_t consistency_evaluations() const override { return 2 * steps_ - 1; }

 private:
  const Denoiser& denoiser_;
  int64_t steps_;
  double rho_;
};

class OdeGenerator : public Generator {
 public:
  // x_T = start_mean + start_scale(z): the starting state at sigma_max. For neural priors
  // start_scale is multiplication by sigma_max (EDM); analytic priors may pass a moment-matched map.
  using StartMap = std::function<at::Tensor(const at::Tensor& z)>;
  OdeGenerator(const Denoiser& denoiser, Shape shape, int64_t steps, double rho, StartMap start);
  Shape latent_shape() const override { return shape_; }
  at::Tensor generate(const at::Tensor& z) const override;
  // Heun: two evaluations per step except the last one to sigma = 0 (Euler).
  int64_t evaluations_per_call() const override { return 2 * steps_ - 1; }
  // Integrates from an arbitrary state at sigmas_.front(); exposed for tests.
  at::Tensor integrate(at::Tensor x) const;

 private:
  const Denoiser& denoiser_;
  Shape shape_;
  int64_t steps_;
  std::vector<double> sigmas_;
  StartMap start_;
};

}  // namespace psbench
