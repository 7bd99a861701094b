// The SVD view of linear operators (src/operators/svd.h): U and V orthogonal (norms kept, V V^T = I,
// explicitly for small operators), A v_i = s_i u_i on the observed coordinates and A v_i = 0 on the rest,
// U diag(s) V^T and V diag(s) U^T equal to the operator's forward and adjoint, the structured views on
// images too large for a dense SVD, and a one-line error for a sampler needing an SVD the operator lacks.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/errors.h"
#include "core/rng.h"
#include "operator_test_util.h"
#include "operators/lowrank.h"
#include "operators/svd.h"
#include "priors/gmm.h"
#include "samplers/kernel.h"

using namespace psbench;

namespace {

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).norm().item<double>() / std::max(1e-300, b.norm().item<double>());
}

at::Tensor batch_of(const Shape& shape, int64_t b, uint64_t seed) {
  Shape s = shape;
  s.insert(s.begin(), b);
  auto gen = make_generator(seed);
  return at::randn(s, gen, at::TensorOptions().dtype(at::kDouble));
}

// Everything an SVD view promises, checked on op.
void check_svd(const Operator& op, bool explicit_factors) {
  REQUIRE(op.has_svd());
  const auto svd = op.svd();
  const int64_t n = numel(op.input_shape()), m = numel(op.output_shape()), r = svd->rank();
  INFO(op.name() << " " << shape_string(op.input_shape()) << " -> " << shape_string(op.output_shape()) << ", rank " << r);
  REQUIRE(r >= 1);
  REQUIRE(r <= std::min(m, n));
  CHECK((svd->singular_values() > 0).all().item<bool>());

  // Orthogonality: reconstruction both ways and norms kept, on random batches.
  auto x = batch_of(op.input_shape(), 3, 11), y = batch_of(op.output_shape(), 3, 12);
  auto cx = svd->vt(x), cy = svd->ut(y);
  CHECK(cx.size(1) == n);
  CHECK(cy.size(1) == m);
  CHECK(rel_err(svd->v(cx), x) < 1e-10);
  CHECK(rel_err(svd->u(cy), y) < 1e-10);
  CHECK(std::abs(cx.norm().item<double>() / x.norm().item<double>() - 1) < 1e-10);
  auto c = at::randn({3, n}, at::kDouble);
  CHECK(rel_err(svd->vt(svd->v(c)), c) < 1e-10);

  // Agreement with the operator.
  CHECK(rel_err(svd->forward(x), op.forward(x)) < 1e-9);
  CHECK(rel_err(svd->adjoint(y), op.adjoint(y)) < 1e-9);

  // A v_i = s_i u_i for observed i, A v_i = 0 beyond the rank (a few of each); errors relative to the
  // largest singular value (||A||), as rounding in A and in the factors is.
  const double s_max = svd->singular_values().max().item<double>();
  for (int64_t i : {int64_t{0}, r / 2, r - 1}) {
    auto e = at::zeros({1, n}, at::kDouble);
    e[0][i] = 1.0;
    auto f = at::zeros({1, m}, at::kDouble);
    f[0][i] = svd->singular_values()[i].item<double>();
    CHECK((op.forward(svd->v(e)) - svd->u(f)).norm().item<double>() < 1e-10 * s_max);
  }
  if (r < n) {
    for (int64_t i : {r, (r + n) / 2, n - 1}) {
      auto e = at::zeros({1, n}, at::kDouble);
      e[0][i] = 1.0;
      CHECK(op.forward(svd->v(e)).norm().item<double>() < 1e-10 * s_max);
    }
  }
  if (explicit_factors) {  // V and U as matrices: V^T V = I
    auto vm = svd->v(at::eye(n, at::kDouble)).reshape({n, n});
    CHECK(rel_err(vm.t().matmul(vm), at::eye(n, at::kDouble)) < 1e-10);
    auto um = svd->u(at::eye(m, at::kDouble)).reshape({m, m});
    CHECK(rel_err(um.matmul(um.t()), at::eye(m, at::kDouble)) < 1e-10);
  }
}

}  // namespace

TEST_CASE("Inpainting masks have a permutation SVD with the observed pixels first", "[operators][svd]") {
  auto m = test::build_task("inpaint_random", {1, 28, 28}, 3, {{"observed", 0.2}});
  check_svd(*m.op, true);
  CHECK(m.op->svd()->rank() == 157);  // round(0.2 * 784)
  auto box = test::build_task("inpaint_box", {3, 16, 16}, 4);
  check_svd(*box.op, true);
}

TEST_CASE("Average-pooling super-resolution has a block SVD with singular values 1 over the factor", "[operators][svd]") {
  auto m = test::build_task("sr_avgpool", {1, 28, 28}, 1, {{"factor", int64_t{4}}});
  check_svd(*m.op, true);
  CHECK(m.op->svd()->rank() == 49);
  CHECK(rel_err(m.op->svd()->singular_values(), at::full({49}, 0.25, at::kDouble)) < 1e-15);
  auto rgb = test::build_task("sr_avgpool", {3, 16, 16}, 1, {{"factor", int64_t{2}}});
  check_svd(*rgb.op, true);
  // 256 x 256: no dense matrix, the block view still exact.
  auto big = test::build_task("sr_avgpool", {1, 256, 256}, 1, {{"factor", int64_t{4}}});
  check_svd(*big.op, false);
}

TEST_CASE("Separable Gaussian blur has a Kronecker SVD for both boundary extensions", "[operators][svd]") {
  for (const char* padding : {"reflect", "symmetric"}) {
    auto m = test::build_task("gaussian_blur", {1, 28, 28}, 1, {{"padding", std::string(padding)}});
    check_svd(*m.op, true);
    // Against the dense SVD of the same operator: the same singular values.
    auto dense = dense_svd(*m.op);
    auto structured = m.op->svd();
    REQUIRE(dense->rank() == structured->rank());
    CHECK(rel_err(std::get<0>(at::sort(structured->singular_values(), 0, true)), dense->singular_values()) < 1e-9);
  }
  // 128 x 128 x 3 = 49152 numbers: far beyond the dense limit.
  auto big = test::build_task("gaussian_blur", {3, 128, 128}, 1);
  check_svd(*big.op, false);
}

TEST_CASE("A truncated SVD drops the directions of small singular values and keeps the rest", "[operators][svd]") {
  auto m = test::build_task("gaussian_blur", {1, 28, 28});
  const auto& blur = m.op;
  const auto full = blur->svd();
  const double floor = 9e-4, s_max = full->singular_values().max().item<double>();
  const auto t = full->truncated(floor);
  const int64_t n = 28 * 28, r = t->rank();
  INFO("rank " << full->rank() << " -> " << r);
  REQUIRE(full->rank() == n);  // the blur is invertible, but barely: its smallest singular value is tiny
  CHECK(full->singular_values().min().item<double>() < floor * s_max);
  CHECK(r == (full->singular_values() >= floor * s_max).sum().item<int64_t>());
  CHECK((t->singular_values() >= floor * s_max).all().item<bool>());
  auto x = batch_of(blur->input_shape(), 3, 13), y = batch_of(blur->output_shape(), 3, 14);
  CHECK(rel_err(t->v(t->vt(x)), x) < 1e-10);
  CHECK(rel_err(t->u(t->ut(y)), y) < 1e-10);
  // Kept directions map as the operator maps them; dropped ones (coordinates r..n-1) to zero in the view, and
  // to their tiny singular value times a unit vector under the operator.
  for (int64_t i : {int64_t{0}, r - 1, r, n - 1}) {
    auto e = at::zeros({1, n}, at::kDouble);
    e[0][i] = 1.0;
    const auto vi = t->v(e);
    if (i < r) {
      auto f = at::zeros({1, n}, at::kDouble);
      f[0][i] = t->singular_values()[i].item<double>();
      CHECK((blur->forward(vi) - t->u(f)).norm().item<double>() < 1e-10 * s_max);
    } else {
      CHECK(t->forward(vi).norm().item<double>() < 1e-12);
      const double si = blur->forward(vi).norm().item<double>();
      CHECK(si < floor * s_max);
      CHECK(si > 0);
    }
  }
  // A floor below every singular value keeps the full view.
  CHECK(full->truncated(1e-12)->rank() == n);
  CHECK(rel_err(full->truncated(1e-12)->forward(x), blur->forward(x)) < 1e-9);
}

TEST_CASE("Other small linear operators get the dense SVD, and large ones none", "[operators][svd]") {
  check_svd(*test::build_task("motion_blur", {1, 16, 16}, 2).op, true);
  check_svd(*test::build_task("sr_bicubic", {1, 28, 28}, 1, {{"factor", int64_t{2}}}).op, true);
  auto big_motion = test::build_task("motion_blur", {1, 128, 128}, 2);
  CHECK_FALSE(big_motion.op->has_svd());
  CHECK_THROWS_AS(big_motion.op->svd(), std::logic_error);
  auto pr = test::build_task("phase_retrieval", {1, 28, 28}, 1);
  CHECK_FALSE(pr.op->has_svd());
}

TEST_CASE("The random low-rank map keeps its factors and completes V without a dense matrix", "[operators][svd]") {
  auto m = test::build_task("gmm_lowrank", {80}, 5, {{"d_y", int64_t{4}}});
  check_svd(*m.op, true);
  CHECK(m.op->svd()->rank() == 4);
  auto wide = test::build_task("gmm_lowrank", {20000}, 5, {{"d_y", int64_t{2}}});
  check_svd(*wide.op, false);
}

TEST_CASE("A sampler needing an SVD on an operator without one is a one-line configuration error", "[operators][svd]") {
  GmmParams p;
  p.dim = 4;
  GaussianMixture prior(p, 1);
  Needs needs;
  needs.svd = true;
  auto pr = test::build_task("phase_retrieval", {1, 28, 28}, 1);
  try {
    check_needs(needs, "mcgdiff", prior, pr.op.get());
    FAIL("no error");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("sampler mcgdiff") != std::string::npos);
    CHECK(msg.find("'phase_retrieval'") != std::string::npos);
    CHECK(msg.find("not linear") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
  auto big_motion = test::build_task("motion_blur", {1, 128, 128}, 2);
  CHECK_THROWS_AS(check_needs(needs, "mcgdiff", prior, big_motion.op.get()), ConfigError);
  auto mask = test::build_task("inpaint_random", {1, 28, 28}, 3);
  CHECK_NOTHROW(check_needs(needs, "mcgdiff", prior, mask.op.get()));
}

TEST_CASE("Lipschitz constants bound every operator's differences and are reached", "[operators][lipschitz]") {
  // Operators with an exact constant: the largest singular value (linear), the exposure (HDR), 1 (phase retrieval).
  const Shape img{1, 28, 28};
  std::vector<std::pair<std::string, MeasurementModel>> ops;
  for (const char* t : {"gaussian_blur", "motion_blur", "sr_avgpool", "sr_bicubic", "inpaint_random", "inpaint_box",
                        "hdr", "phase_retrieval"})
    ops.emplace_back(t, test::build_task(t, img, 3));
  for (auto& [name, m] : ops) {
    const double lip = m.op->lipschitz();
    INFO(name << ": L = " << lip);
    REQUIRE(std::isfinite(lip));
    REQUIRE(lip > 0);
    // An upper bound on 50 random difference quotients (small differences too, where HDR is linear).
    auto x = batch_of(img, 50, 21), d = batch_of(img, 50, 22);
    for (double scale : {1.0, 1e-3}) {
      auto q = (m.op->forward(0.3 * x + scale * d) - m.op->forward(0.3 * x)).flatten(1).norm(2, 1) /
               (scale * d.flatten(1).norm(2, 1));
      CHECK(q.max().item<double>() <= lip * (1 + 1e-9));
    }
    // Reached along the top singular vector (linear operators).
    if (m.op->is_linear()) {
      const auto svd = m.op->svd();
      CHECK(lip == Approx(svd->singular_values().max().item<double>()).epsilon(1e-12));
      auto e = at::zeros({1, numel(img)}, at::kDouble);
      e[0][svd->singular_values().argmax().item<int64_t>()] = 1.0;
      CHECK(m.op->forward(svd->v(e)).norm().item<double>() == Approx(lip).epsilon(1e-9));
    }
  }
  CHECK(test::build_task("hdr", img, 1, {{"scale", 3.0}}).op->lipschitz() == 3.0);
  CHECK(test::build_task("phase_retrieval", img, 1).op->lipschitz() == 1.0);
  auto gen = make_generator(4);
  LowRankOperator lowrank(8, 3, gen);
  CHECK(lowrank.lipschitz() == Approx(lowrank.svd()->singular_values().max().item<double>()).epsilon(1e-12));

  SECTION("estimated for operators without a closed form") {
    // A learned (TorchScript, treated as nonlinear) 2x2 average pooling: exactly 1/2, estimated through
    // Jacobian-vector products in float32.
    auto halve = test::build_task("learned", {1, 8, 8}, 1,
                                  {{"path", test::fixture_path("learned_halve.pt")}, {"output_shape", std::string("any")}});
    CHECK(halve.op->lipschitz() == Approx(0.5).epsilon(1e-3));
    // tanh of a 3x3 convolution: the estimate bounds the difference quotients seen at random points.
    auto soft = test::build_task("learned", {1, 8, 8}, 1, {{"path", test::fixture_path("learned_softblur.pt")}});
    const double lip = soft.op->lipschitz();
    auto x = batch_of({1, 8, 8}, 50, 23), d = batch_of({1, 8, 8}, 50, 24);
    auto q = (soft.op->forward(0.5 * x + 1e-3 * d) - soft.op->forward(0.5 * x)).flatten(1).norm(2, 1) /
             (1e-3 * d.flatten(1).norm(2, 1));
    CHECK(q.max().item<double>() <= lip * 1.01);
  }
}
