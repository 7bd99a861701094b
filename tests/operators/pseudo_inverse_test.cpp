// Pseudo-inverses: exact Moore-Penrose for SR and inpainting, exact Tikhonov solution for blurs.
#include <catch2/catch.hpp>

#include "operators/blur.h"
#include "operator_test_util.h"

using namespace psbench;
using psbench::test::build_task;

namespace {
at::Tensor randn_like_shape(const Shape& s, uint64_t seed, int64_t batch = 2) {
  Shape full{batch};
  full.insert(full.end(), s.begin(), s.end());
  auto gen = make_generator(seed);
  return at::randn(full, gen, at::kDouble);
}
}  // namespace

TEST_CASE("super-resolution and inpainting pseudo-inverses are Moore-Penrose inverses", "[operators][pinv]") {
  const std::string task = GENERATE(as<std::string>{}, "sr_avgpool", "sr_bicubic", "inpaint_random", "inpaint_box");
  CAPTURE(task);
  auto m = build_task(task, {2, 12, 16}, 3);
  auto a = m.op->matrix();
  auto pinv = at::linalg_pinv(a);
  auto y = randn_like_shape(m.op->output_shape(), 4);
  auto x = m.op->pseudo_inverse(y);
  REQUIRE(x.sizes().slice(1).vec() == m.op->input_shape());
  REQUIRE(at::allclose(x.flatten(1), y.flatten(1).matmul(pinv.t()), 1e-8, 1e-10));
}

TEST_CASE("blur pseudo-inverses solve the Tikhonov normal equations of the padded operator", "[operators][pinv]") {
  const std::string task = GENERATE(as<std::string>{}, "gaussian_blur", "motion_blur");
  CAPTURE(task);
  auto m = build_task(task, {1, 12, 12}, 3, {{"kernel_size", int64_t{5}}});
  const double lambda = dynamic_cast<const ConvolutionBlur&>(*m.op).tikhonov_lambda();
  REQUIRE(lambda == Approx(0.05 * 0.05 / 0.25));
  auto a = m.op->matrix();
  auto y = m.op->forward(randn_like_shape({1, 12, 12}, 6)) + 0.05 * randn_like_shape({1, 12, 12}, 7);
  auto x = m.op->pseudo_inverse(y);
  auto normal = a.t().matmul(a) + lambda * at::eye(144, at::kDouble);
  auto expected = at::linalg_solve(normal, a.t().matmul(y.flatten(1).t())).t();
  // CG stops at a normal-equation residual below 1e-8 ||A^T y||, so the error is at most
  // ||(A^T A + lambda I)^-1|| * 1e-8 ||A^T y|| <= 1e-8 ||A^T y|| / lambda per measurement.
  auto err = (x.flatten(1) - expected).norm(2, {1});
  auto bound = 1e-8 * m.op->adjoint(y).flatten(1).norm(2, {1}) / lambda;
  CAPTURE(err, bound, expected.norm(2, {1}));
  REQUIRE(err.le(bound).all().item<bool>());
  REQUIRE(bound.lt(1e-4 * expected.norm(2, {1})).all().item<bool>());  // the bound is meaningful
  // float32 measurements give a float32 estimate of the same solution.
  auto xf = m.op->pseudo_inverse(y.to(at::kFloat));
  REQUIRE(xf.scalar_type() == at::kFloat);
  REQUIRE(at::allclose(xf.to(at::kDouble), x, 1e-4, 1e-5));
}
