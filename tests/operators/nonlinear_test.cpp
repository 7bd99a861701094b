// Phase retrieval (definition, Parseval, known ambiguities), HDR clipping and the learned operator.
#include <catch2/catch.hpp>

#include <complex>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "operators/phase_retrieval.h"
#include "operator_test_util.h"

using namespace psbench;
using psbench::test::build_task;
using psbench::test::fixture_path;
using psbench::test::read_fixture;

TEST_CASE("phase retrieval is the centred orthonormal DFT magnitude of the zero-padded image", "[operators][phase]") {
  // n = 5 with pad 1 (N = 7, odd) and n = 4 with pad 1 (N = 6, even): oversampling 8 / n gives pad 1.
  const int64_t n = GENERATE(as<int64_t>{}, 4, 5);
  auto m = build_task("phase_retrieval", {1, n, n}, 1, {{"oversampling", 8.0 / static_cast<double>(n)}});
  const int64_t pad = 1, big = n + 2;
  REQUIRE(m.op->output_shape() == Shape{1, big, big});
  auto gen = make_generator(9);
  auto x = at::randn({1, 1, n, n}, gen, at::kDouble);
  auto y = m.op->forward(x);
  auto xa = x.accessor<double, 4>();
  auto ya = y.accessor<double, 4>();
  // Direct sum: output index j holds frequency j - floor(N / 2) (fftshift); input sample (a, b) sits at
  // padded position (a + pad, b + pad); the input ifftshift only changes phases.
  for (int64_t j = 0; j < big; ++j)
    for (int64_t l = 0; l < big; ++l) {
      std::complex<double> acc = 0;
      for (int64_t a = 0; a < n; ++a)
        for (int64_t b = 0; b < n; ++b) {
          const double phase = -2.0 * M_PI *
                               (static_cast<double>((j - big / 2) * (a + pad)) + static_cast<double>((l - big / 2) * (b + pad))) /
                               static_cast<double>(big);
          acc += xa[0][0][a][b] * std::polar(1.0, phase);
        }
      REQUIRE(ya[0][0][j][l] == Approx(std::abs(acc) / static_cast<double>(big)).margin(1e-12));
    }
}

TEST_CASE("phase retrieval ambiguities", "[operators][phase]") {
  const int64_t n = GENERATE(as<int64_t>{}, 8, 9, 28);
  auto m = build_task("phase_retrieval", {2, n, n}, 1);
  const int64_t big = m.op->output_shape()[1];
  CAPTURE(n, big);
  auto gen = make_generator(5);
  auto x = at::randn({3, 2, n, n}, gen, at::kDouble);
  auto y = m.op->forward(x);
  auto close = [](const at::Tensor& a, const at::Tensor& b) { return at::allclose(a, b, 1e-10, 1e-12); };

  // Parseval: the orthonormal DFT preserves the norm, and zero padding adds nothing.
  REQUIRE(y.pow(2).sum().item<double>() == Approx(x.pow(2).sum().item<double>()).epsilon(1e-12));
  // Global sign.
  REQUIRE(close(m.op->forward(-x), y));
  // 180-degree rotation: with equal padding on both sides it is the reversal n -> -n of the padded
  // canvas followed by a one-sample circular shift; reversal conjugates the spectrum of a real signal
  // and the shift only changes phases, so the magnitude is unchanged exactly.
  REQUIRE(close(m.op->forward(x.flip({-2, -1})), y));
  // Translation inside the zero border: moving the content right by one pixel (its last column being
  // zero) is a circular shift of the padded canvas, which only changes phases.
  auto x_border = x.clone();
  x_border.select(-1, n - 1).zero_();
  REQUIRE(close(m.op->forward(at::constant_pad_nd(x_border, {1, 0, 0, 0}).narrow(-1, 0, n)), m.op->forward(x_border)));
  // A single-axis flip is not an invariance: it reflects the spectrum, which in centred coordinates
  // is index j -> (N - j) mod N for even N (frequency 0 sits at N / 2) and j -> N - 1 - j for odd N.
  auto yf = m.op->forward(x.flip({-1}));
  REQUIRE_FALSE(close(yf, y));
  at::Tensor reflected;
  if (big % 2 == 0) reflected = y.flip({-1}).roll({1}, {-1});
  else reflected = y.flip({-1});
  REQUIRE(close(yf, reflected));
  // The magnitude of a real image is centro-symmetric in the same coordinates.
  auto rot = big % 2 == 0 ? y.flip({-2, -1}).roll({1, 1}, {-2, -1}) : y.flip({-2, -1});
  REQUIRE(close(rot, y));
  // And it does depend on the image.
  REQUIRE_FALSE(close(m.op->forward(x + 0.1), y));
}

TEST_CASE("HDR clips scale * x to the range -1..1", "[operators][hdr]") {
  const double scale = GENERATE(0.5, 2.0, 3.0);
  auto m = build_task("hdr", {1, 6, 6}, 1, {{"scale", scale}});
  REQUIRE_FALSE(m.op->is_linear());
  auto x = at::linspace(-1, 1, 36, at::kDouble).view({1, 1, 6, 6});
  auto y = m.op->forward(x);
  auto xa = x.flatten(), ya = y.flatten();
  for (int64_t i = 0; i < 36; ++i) {
    const double v = xa[i].item<double>() * scale;
    const double expected = v > 1 ? 1.0 : (v < -1 ? -1.0 : v);
    REQUIRE(ya[i].item<double>() == Approx(expected).margin(1e-15));
  }
  // y / scale recovers x where nothing clipped.
  auto unclipped = (x * scale).abs().lt(1);
  REQUIRE(at::allclose(m.op->pseudo_inverse(y).masked_select(unclipped), x.masked_select(unclipped)));
}

TEST_CASE("learned operator from a TorchScript file", "[operators][learned]") {
  auto f = read_fixture("learned_softblur.txt");
  auto m = build_task("learned", {1, 8, 8}, 1, {{"path", fixture_path("learned_softblur.pt")}});
  REQUIRE_FALSE(m.op->is_linear());
  REQUIRE(m.op->output_shape() == Shape{1, 8, 8});
  auto x = f["input"].to(at::kFloat);
  auto y = m.op->forward(x);
  REQUIRE(y.scalar_type() == at::kFloat);
  REQUIRE(at::allclose(y.to(at::kDouble), f["output"], 0, 1e-6));
  // float64 in, float64 out; gradients flow through the module to the input.
  auto xd = f["input"].clone().requires_grad_(true);
  auto yd = m.op->forward(xd);
  REQUIRE(yd.scalar_type() == at::kDouble);
  yd.sum().backward();
  REQUIRE(xd.grad().defined());
  REQUIRE(xd.grad().abs().sum().item<double>() > 0);

  SECTION("output shapes are checked") {
    auto halve = fixture_path("learned_halve.pt");
    REQUIRE(build_task("learned", {1, 8, 8}, 1, {{"path", halve}, {"output_shape", std::string("any")}})
                .op->output_shape() == Shape{1, 4, 4});
    REQUIRE(build_task("learned", {1, 8, 8}, 1, {{"path", halve}, {"output_shape", std::string("1x4x4")}})
                .op->output_shape() == Shape{1, 4, 4});
  }
}
