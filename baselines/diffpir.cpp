// DiffPIR, plug-and-play restoration with a diffusion denoiser (Zhu, Zhang, Liang, Cao, Wen, Timofte, Van Gool;
// CVPR Workshops 2023), for a linear operator with Gaussian noise. Half-quadratic splitting along the reverse
// diffusion (its Algorithm 1, in the variance-exploding x_sigma its DDPM form rescales to): the denoiser's
// x0_hat = D(x, sigma) is the prior step; the data step solves
//   x0_c = argmin_x ||y - A x||^2 + rho ||x - x0_hat||^2,  rho = lambda sigma_y^2 / sigma^2,
// in closed form through the operator's SVD (x0_c,i = (s_i^2 y_bar_i + rho x0_i) / (s_i^2 + rho) on observed
// spectral coordinates, x0_hat elsewhere); and the next state mixes the noise x0_c implies with fresh noise,
//   x' = x0_c + sigma' (sqrt(1 - zeta) (x - x0_c) / sigma + sqrt(zeta) xi).
// The last step, to sigma' = 0, returns x0_c. The authors' configurations: lambda = 1 with zeta = 0.1 over 100
// steps (super-resolution, deblurring), zeta = 1 over 20 (inpainting), on a quadratic skip through the DDPM's
// 1000 levels; here the prior's Karras grid. (The paper also gives a gradient data step for operators without a
// closed-form solution; psbench needs the SVD.) One forward denoiser evaluation per step and sample, no
// gradient. Not a posterior sampler: on a Gaussian prior its output follows a closed-form law
// (tests/baselines/spectral_diffusion_test.cpp).
#include <cmath>

#include "baselines/reverse_diffusion.h"
#include "samplers/driver.h"

namespace psbench {
namespace {

struct DiffpirOptions {
  int64_t steps = 100;
  double lambda = 1.0, zeta = 0.1;
  double divergence_threshold = 1e4;
  NoiseGrid grid = NoiseGrid::Karras;
  static const OptionSchema<DiffpirOptions>& schema() {
    static const auto s = [] {
      using O = DiffpirOptions;
      OptionSchema<O> s;
      s.integer(&O::steps, "steps", 100, "S: reverse steps on the Karras grid (rho = 7) before 0 (the authors: 100)")
          .at_least(1);
      s.real(&O::lambda, "lambda", 1.0,
             "lambda: weight of the prior step in the data step's rho = lambda sigma_y^2 / sigma^2 (the authors: 1)")
          .above(0);
      s.real(&O::zeta, "zeta", 0.1,
             "zeta: fraction of fresh noise in each step, the rest the noise x0_c implies (the authors: 0.1; 1 for "
             "inpainting)")
          .at_least(0)
          .at_most(1);
      add_divergence_threshold(s, &O::divergence_threshold);
      add_noise_grid(s, &O::grid);
      return s;
    }();
    return s;
  }
};

class Diffpir : public DiffusionKernel {
 public:
  using Options = DiffpirOptions;
  using State = DiffusionState;
  explicit Diffpir(Options o) : DiffusionKernel("diffpir", o.steps, o.divergence_threshold, o.grid), o_(o) {}


  Step<State> step(State s, const StepContext& ctx) const {
    const double sig = s.sigmas[ctx.t], nxt = s.sigmas[ctx.t + 1];
    const auto sp = spectral(s, sig, ctx);
    const auto& m = s.meas;
    auto x0c = sp.x0.clone();
    if (m.r > 0) {
      // (s^2 y_bar + rho x0) / (s^2 + rho); rho = 0 (noiseless y) is the projection onto y.
      const double sy = ctx.problem.noise().sigma_y, rho = o_.lambda * sy * sy / (sig * sig);
      const auto w = m.s.pow(2) / (m.s.pow(2) + rho);
      auto obs = x0c.narrow(1, 0, m.r);
      obs.copy_((1.0 - w) * obs + w * m.ybar);
    }
    const auto next = x0c + nxt * (std::sqrt(1.0 - o_.zeta) / sig * (sp.x - x0c) + std::sqrt(o_.zeta) * sp.xi);
    return from_spectral(std::move(s), next);
  }
  std::string divergence(const StepContext& ctx) const {
    return DiffusionKernel::divergence(ctx) + "; lambda=" + format_value(o_.lambda) + ", zeta=" + format_value(o_.zeta);
  }

 private:
  Options o_;
};

SamplerRegistrar reg_diffpir(kernel_entry<Diffpir>(
    "diffpir",
    "DiffPIR (Zhu et al. 2023): reverse diffusion with a half-quadratic-splitting data step solved through the "
    "operator's SVD (linear A, Gaussian noise); one forward evaluation per step and run. Budget B per measurement: "
    "steps = floor(B / K)"));

}  // namespace
}  // namespace psbench
