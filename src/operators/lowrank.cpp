// Random low-rank linear operator of the MCGdiff Gaussian-mixture benchmark (ALGORITHMS.md §7):
// A = U diag(s) V^T with U, V from the SVD of a Gaussian matrix and s ~ U[0, 1].
#include "operators/lowrank.h"

#include <ATen/ATen.h>

#include "operators/svd.h"

namespace psbench {

LowRankOperator::LowRankOperator(int64_t dim, int64_t d_y, at::Generator& gen) : dim_(dim), d_y_(d_y) {
  auto opts = at::TensorOptions().dtype(at::kDouble);
  auto g = at::randn({d_y, dim}, gen, opts);
  auto [u, sv, vh] = at::linalg_svd(g, /*full_matrices=*/false);
  s_ = at::rand({d_y}, gen, opts);
  u_ = u;
  vh_ = vh;  // [d_y, dim], orthonormal rows
  a_ = u_.matmul(at::diag(s_)).matmul(vh_);
}

at::Tensor LowRankOperator::forward(const at::Tensor& x) const {
  return x.flatten(1).matmul(a_.to(x.scalar_type()).t());
}
at::Tensor LowRankOperator::adjoint(const at::Tensor& y) const { return y.matmul(a_.to(y.scalar_type())); }
std::shared_ptr<const SvdView> LowRankOperator::svd() const {
  return std::make_shared<SvdView>(input_shape(), output_shape(), s_, dense_orthogonal(u_), completed_orthogonal(vh_.t()));
}

at::Tensor LowRankOperator::pseudo_inverse(const at::Tensor& y) const {
  auto pinv = vh_.t().matmul(at::diag(1.0 / s_)).matmul(u_.t());  // [dim, d_y]
  return y.matmul(pinv.t().to(y.scalar_type()));
}

namespace {

class LowRankTask : public Task {
 public:
  explicit LowRankTask(const Options& o)
      : d_y_(o.get_int("d_y")), sigma_y_(o.get_real("sigma_y")), draw_(o.get_string("sigma_y_draw")) {}
  MeasurementModel build(const Shape& x_shape, at::Generator& gen) const override {
    if (x_shape.size() != 1)
      throw ConfigError("task gmm_lowrank: needs a vector-valued prior, got shape " + shape_string(x_shape));
    if (d_y_ > x_shape[0])
      throw ConfigError("task gmm_lowrank: d_y=" + std::to_string(d_y_) + " exceeds the dimension " +
                        std::to_string(x_shape[0]));
    MeasurementModel m;
    auto op = std::make_unique<LowRankOperator>(x_shape[0], d_y_, gen);
    m.noise.sigma_y = sigma_y_;
    if (draw_ == "uniform_max_s") {
      // MCGdiff: sigma_y ~ U[0, max s]; kept away from 0 so the posterior stays a density.
      double smax = op->singular_values().max().item<double>();
      m.noise.sigma_y = std::max(1e-3, at::rand({1}, gen, at::kDouble).item<double>() * smax);
    }
    m.op = std::move(op);
    return m;
  }

 private:
  int64_t d_y_;
  double sigma_y_;
  std::string draw_;
};

TaskRegistrar reg_lowrank({"gmm_lowrank",
                           "random low-rank linear map A = U diag(s) V^T (MCGdiff set-up) with Gaussian noise",
                           {OptionSpec::integer("d_y", 1, "measurement dimension").at_least(1),
                            OptionSpec::real("sigma_y", 0.1, "noise standard deviation sigma_y").above(0),
                            OptionSpec::choice("sigma_y_draw", "fixed", {"fixed", "uniform_max_s"},
                                               "fixed: use sigma_y; uniform_max_s: draw sigma_y ~ U[0, max s] "
                                               "per measurement as in MCGdiff (floored at 1e-3)")},
                           [](const Options& o) { return std::make_unique<LowRankTask>(o); }});

}  // namespace
}  // namespace psbench
