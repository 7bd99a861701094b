// Masks and motion kernels are drawn once, in Task::build, from the task's generator: fixed across
// forward calls, reproducible from the seed, different for a different seed.
#include <catch2/catch.hpp>

#include "operators/blur.h"
#include "operators/inpainting.h"
#include "operator_test_util.h"

using namespace psbench;
using psbench::test::build_task;

namespace {
at::Tensor kernel_of(const MeasurementModel& m) { return dynamic_cast<const ConvolutionBlur&>(*m.op).kernel(); }
at::Tensor mask_of(const MeasurementModel& m) { return dynamic_cast<const MaskOperator&>(*m.op).mask(); }
}  // namespace

TEST_CASE("forward calls never redraw the operator's randomness", "[operators][random]") {
  const std::string task = GENERATE(as<std::string>{}, "motion_blur", "inpaint_random", "inpaint_box");
  CAPTURE(task);
  auto m = build_task(task, {3, 28, 28}, 42);
  auto gen = make_generator(1);
  auto x1 = at::randn({2, 3, 28, 28}, gen, at::kDouble);
  auto x2 = at::randn({2, 3, 28, 28}, gen, at::kDouble);
  auto first = m.op->forward(x1);
  m.op->forward(x2);
  m.op->adjoint(x2);
  m.op->pseudo_inverse(first);
  REQUIRE(at::equal(m.op->forward(x1), first));
  // Each batch element sees the same operator.
  REQUIRE(at::equal(m.op->forward(x1.narrow(0, 1, 1)), first.narrow(0, 1, 1)));
}

TEST_CASE("motion kernels are reproducible from the seed", "[operators][random]") {
  auto a = kernel_of(build_task("motion_blur", {1, 64, 64}, 7));
  auto b = kernel_of(build_task("motion_blur", {1, 64, 64}, 7));
  auto c = kernel_of(build_task("motion_blur", {1, 64, 64}, 8));
  REQUIRE(a.sizes().vec() == std::vector<int64_t>{17, 17});  // auto: 61 * 64 / 256 = 15.25 -> 17
  REQUIRE(at::equal(a, b));
  REQUIRE_FALSE(at::allclose(a, c));
  REQUIRE(a.sum().item<double>() == Approx(1.0).epsilon(1e-12));
  REQUIRE(a.min().item<double>() >= 0.0);
  // A trajectory, not a point: many pixels carry weight, none carries most of it.
  REQUIRE(a.gt(1e-3).sum().item<int64_t>() >= 10);
  REQUIRE(a.max().item<double>() < 0.5);
}

TEST_CASE("motion kernels with intensity 0 are straight lines", "[operators][random]") {
  auto k = kernel_of(build_task("motion_blur", {1, 28, 28}, 3, {{"intensity", 0.0}, {"kernel_size", int64_t{15}}}));
  // The support of a bilinearly splatted segment has no holes along its main axis: the weight is
  // spread over at least k pixels and the kernel is point-symmetric about its centre.
  REQUIRE(k.gt(1e-6).sum().item<int64_t>() >= 15);
  REQUIRE(at::allclose(k, k.flip({0, 1}), 1e-6, 1e-6));
}

TEST_CASE("inpainting masks are reproducible, shared over channels and of the right size", "[operators][random]") {
  SECTION("random pixels") {
    auto a = mask_of(build_task("inpaint_random", {3, 28, 28}, 7, {{"observed", 0.3}}));
    auto b = mask_of(build_task("inpaint_random", {3, 28, 28}, 7, {{"observed", 0.3}}));
    auto c = mask_of(build_task("inpaint_random", {3, 28, 28}, 8, {{"observed", 0.3}}));
    REQUIRE(at::equal(a, b));
    REQUIRE_FALSE(at::equal(a, c));
    REQUIRE(a.sum().item<double>() == std::round(0.3 * 784));
    auto m = build_task("inpaint_random", {3, 28, 28}, 7, {{"observed", 0.3}});
    auto y = m.op->forward(at::ones({1, 3, 28, 28}, at::kDouble))[0];
    REQUIRE(at::equal(y[0], y[1]));
    REQUIRE(at::equal(y[0], y[2]));
    REQUIRE(at::equal(y[0], a));
  }
  SECTION("box") {
    auto a = mask_of(build_task("inpaint_box", {1, 28, 28}, 7));
    auto b = mask_of(build_task("inpaint_box", {1, 28, 28}, 7));
    REQUIRE(at::equal(a, b));
    bool any_different = false;
    for (uint64_t seed = 8; seed < 16 && !any_different; ++seed)
      any_different = !at::equal(a, mask_of(build_task("inpaint_box", {1, 28, 28}, seed)));
    REQUIRE(any_different);
    // auto: a 14 x 14 hole at least 2 pixels from the border.
    REQUIRE(a.eq(0).sum().item<int64_t>() == 14 * 14);
    auto border = at::ones({28, 28}, at::kDouble);
    border.narrow(0, 2, 24).narrow(1, 2, 24).zero_();
    REQUIRE((border * (1 - a)).sum().item<double>() == 0.0);
  }
}
