// Gaussian blur and bicubic downsampling against independent references (scipy.ndimage and PIL),
// written by tools/make_operator_fixtures.py into tests/fixtures/.
#include <catch2/catch.hpp>

#include "operators/blur.h"
#include "operator_test_util.h"

using namespace psbench;
using psbench::test::build_task;
using psbench::test::read_fixture;

TEST_CASE("Gaussian blur matches scipy.ndimage.gaussian_filter", "[operators][reference]") {
  const int idx = GENERATE(range(0, 4));
  auto f = read_fixture("gaussian_blur_" + std::to_string(idx) + ".txt");
  const auto k = static_cast<int64_t>(f["params"][0].item<double>());
  const double std = f["params"][1].item<double>();
  auto x = f["input"];
  const Shape shape = x.sizes().vec();
  for (const std::string padding : {"reflect", "symmetric"}) {
    CAPTURE(idx, padding, k, std);
    auto m = build_task("gaussian_blur", shape, 1,
                        {{"kernel_size", k}, {"std", std}, {"padding", padding}});
    auto y = m.op->forward(x.unsqueeze(0))[0];
    REQUIRE(at::allclose(y, f[padding], 0, 1e-12));
    REQUIRE(at::allclose(dynamic_cast<const ConvolutionBlur&>(*m.op).kernel(), f["kernel2d"], 0, 1e-15));
  }
  // The two paddings really differ near the border (the fixture would catch a swapped convention).
  REQUIRE_FALSE(at::allclose(f["reflect"], f["symmetric"], 0, 1e-6));
}

TEST_CASE("antialiased bicubic downsampling matches PIL", "[operators][reference]") {
  const int idx = GENERATE(range(0, 4));
  auto f = read_fixture("bicubic_" + std::to_string(idx) + ".txt");
  const auto s = static_cast<int64_t>(f["params"][0].item<double>());
  auto x = f["input"];
  CAPTURE(idx, s, shape_string(x.sizes().vec()));
  auto m = build_task("sr_bicubic", x.sizes().vec(), 1, {{"factor", s}});
  auto y = m.op->forward(x.unsqueeze(0))[0];
  REQUIRE(y.sizes() == f["output"].sizes());
  // PIL returns float32: compare at float32 resolution.
  REQUIRE(at::allclose(y, f["output"], 0, 2e-6));
  // Average pooling is a different operator: the reference distinguishes them.
  auto pooled = build_task("sr_avgpool", x.sizes().vec(), 1, {{"factor", s}}).op->forward(x.unsqueeze(0))[0];
  REQUIRE_FALSE(at::allclose(pooled, f["output"], 0, 1e-3));
}

TEST_CASE("motion blur is the DPS reflection-pad + Conv2d pipeline with its kernel", "[operators][reference]") {
  // DPS: nn.ReflectionPad2d(k // 2) then a bias-free depthwise Conv2d (a correlation) with the kernel.
  const Shape shape = GENERATE(values<Shape>({{3, 28, 28}, {1, 12, 20}}));
  auto m = build_task("motion_blur", shape, 4, {{"kernel_size", int64_t{7}}});
  auto k = dynamic_cast<const ConvolutionBlur&>(*m.op).kernel();
  auto gen = make_generator(2);
  auto x = at::randn({2, shape[0], shape[1], shape[2]}, gen, at::kDouble);
  auto planes = x.reshape({-1, 1, shape[1], shape[2]});
  auto expected = at::conv2d(at::reflection_pad2d(planes, {3, 3, 3, 3}), k.view({1, 1, 7, 7})).reshape(x.sizes());
  REQUIRE(at::allclose(m.op->forward(x), expected, 1e-10, 1e-12));
  // The kernel is not symmetric, so a convolution (flipped kernel) would be caught.
  auto flipped = at::conv2d(at::reflection_pad2d(planes, {3, 3, 3, 3}), k.flip({0, 1}).view({1, 1, 7, 7}));
  REQUIRE_FALSE(at::allclose(flipped.reshape(x.sizes()), expected, 1e-6, 1e-6));
}
