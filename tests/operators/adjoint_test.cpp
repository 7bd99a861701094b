// <Ax, y> = <x, A^T y> for every linear image operator, several sizes and channel counts, and the
// dense matrix agrees with forward and adjoint.
#include <catch2/catch.hpp>

#include "operators/image_ops.h"
#include "operator_test_util.h"

using namespace psbench;
using psbench::test::build_task;
using psbench::test::dot_all;

namespace {
struct LinearCase {
  std::string task;
  std::map<std::string, OptionValue> options;
};

const std::vector<LinearCase>& linear_cases() {
  static const std::vector<LinearCase> cases = {
      {"sr_avgpool", {{"factor", int64_t{4}}}},
      {"sr_avgpool", {{"factor", int64_t{2}}}},
      {"sr_bicubic", {{"factor", int64_t{4}}}},
      {"sr_bicubic", {{"factor", int64_t{2}}}},
      {"gaussian_blur", {}},
      {"gaussian_blur", {{"kernel_size", int64_t{11}}, {"std", 2.0}, {"padding", std::string("reflect")}}},
      {"gaussian_blur", {{"kernel_size", int64_t{9}}, {"std", 1.5}, {"padding", std::string("symmetric")}}},
      {"motion_blur", {}},
      {"motion_blur", {{"kernel_size", int64_t{11}}, {"intensity", 0.9}, {"padding", std::string("symmetric")}}},
      {"inpaint_random", {{"observed", 0.3}}},
      {"inpaint_box", {}},
  };
  return cases;
}
}  // namespace

TEST_CASE("linear operators have a true adjoint", "[operators][adjoint]") {
  const auto& c = linear_cases()[static_cast<size_t>(GENERATE(range(0, 11)))];
  const Shape shape = GENERATE(values<Shape>({{1, 28, 28}, {3, 16, 16}, {2, 12, 20}}));
  const uint64_t seed = GENERATE(as<uint64_t>{}, 11, 12);
  CAPTURE(c.task, shape_string(shape), seed);
  auto m = build_task(c.task, shape, seed, c.options);
  REQUIRE(m.op->is_linear());

  auto gen = make_generator(seed + 100);
  Shape xs{3}, ys{3};
  for (auto v : m.op->input_shape()) xs.push_back(v);
  for (auto v : m.op->output_shape()) ys.push_back(v);
  auto x = at::randn(xs, gen, at::kDouble);
  auto y = at::randn(ys, gen, at::kDouble);
  const double lhs = dot_all(m.op->forward(x), y);
  const double rhs = dot_all(x, m.op->adjoint(y));
  CAPTURE(lhs, rhs);
  REQUIRE(std::abs(lhs - rhs) <= 1e-5 * std::max(std::abs(lhs), std::abs(rhs)));
  // A non-trivial check: the operator is not zero on this input.
  REQUIRE(std::abs(lhs) > 1e-3);
}

TEST_CASE("the dense matrix agrees with forward and adjoint", "[operators][adjoint]") {
  const auto& c = linear_cases()[static_cast<size_t>(GENERATE(range(0, 11)))];
  const Shape shape = GENERATE(values<Shape>({{1, 28, 28}, {2, 12, 20}}));
  CAPTURE(c.task, shape_string(shape));
  auto m = build_task(c.task, shape, 5, c.options);
  REQUIRE(m.op->has_matrix());
  auto a = m.op->matrix();
  REQUIRE(a.sizes().vec() == std::vector<int64_t>{numel(m.op->output_shape()), numel(m.op->input_shape())});

  auto gen = make_generator(77);
  Shape xs{2}, ys{2};
  for (auto v : m.op->input_shape()) xs.push_back(v);
  for (auto v : m.op->output_shape()) ys.push_back(v);
  auto x = at::randn(xs, gen, at::kDouble);
  auto y = at::randn(ys, gen, at::kDouble);
  REQUIRE(at::allclose(x.flatten(1).matmul(a.t()), m.op->forward(x).flatten(1), 1e-10, 1e-12));
  // The adjoint against the transpose of the probed matrix: independent of the inner-product test.
  REQUIRE(at::allclose(y.flatten(1).matmul(a), m.op->adjoint(y).flatten(1), 1e-10, 1e-12));
}

TEST_CASE("large images have no dense matrix", "[operators][adjoint]") {
  auto m = build_task("gaussian_blur", {3, 64, 64}, 1);
  REQUIRE_FALSE(m.op->has_matrix());
  REQUIRE(build_task("gaussian_blur", {1, 64, 64}, 1).op->has_matrix());
}

TEST_CASE("operators keep the dtype of their input", "[operators]") {
  for (const auto& c : linear_cases()) {
    CAPTURE(c.task);
    auto m = build_task(c.task, {1, 28, 28}, 3, c.options);
    auto xf = at::rand({2, 1, 28, 28}, at::kFloat) * 2 - 1;
    auto yf = m.op->forward(xf);
    REQUIRE(yf.scalar_type() == at::kFloat);
    REQUIRE(m.op->adjoint(yf).scalar_type() == at::kFloat);
    REQUIRE(m.op->pseudo_inverse(yf).scalar_type() == at::kFloat);
    // float32 and float64 evaluations agree (the constants are stored in float64).
    REQUIRE(at::allclose(yf.to(at::kDouble), m.op->forward(xf.to(at::kDouble)), 1e-5, 1e-5));
  }
  for (const std::string t : {"phase_retrieval", "hdr"}) {
    auto m = build_task(t, {1, 28, 28}, 3);
    auto xf = at::rand({2, 1, 28, 28}, at::kFloat);
    REQUIRE(m.op->forward(xf).scalar_type() == at::kFloat);
    REQUIRE(m.op->forward(xf.to(at::kDouble)).scalar_type() == at::kDouble);
  }
}
