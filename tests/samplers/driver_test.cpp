// The one sampler driver, checked on a deterministic toy kernel whose every state is known in closed
// form: phases and their NFE counters, burn-in and thinning, divergence dropping rows in the middle of a
// batch, batching invariance, trace columns, and capability checks from the kernel's declared needs.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/rng.h"
#include "operators/lowrank.h"
#include "samplers/driver.h"
#include "test_util.h"

using namespace psbench;
using namespace psbench::testing;

namespace {

// x0 = u ~ U[0, 1) per chain; warm-up: x += 1 per step; chain: x *= 2 per step. A row whose x reaches
// `limit` has diverged. One forward "evaluation" per row and step.
struct Doubling {
  struct Options {
    int64_t warm = 2, burn_in = 1, thinning = 2;
    double limit = 80;
    static const OptionSchema<Options>& schema() {
      static const auto s = [] {
        OptionSchema<Options> s;
        s.integer(&Options::warm, "warm", 2, "").at_least(0);
        s.integer(&Options::burn_in, "burn_in", 1, "").at_least(0);
        s.integer(&Options::thinning, "thinning", 2, "").at_least(1);
        s.real(&Options::limit, "limit", 80, "").above(0);
        return s;
      }();
      return s;
    }
  };
  struct State {
    at::Tensor x;
    void keep_rows(const at::Tensor& rows) { x = keep_defined_rows(x, rows); }
  };
  Options o;
  explicit Doubling(Options opts) : o(opts) {}
  Needs needs() const { return {}; }
  void validate(const Prior&) const {}
  int64_t chains(int64_t n) const { return 4; }
  std::vector<Phase> phases(int64_t per_chain, const Prior&) const {
    Phase chain = Phase::of("chain", o.burn_in + per_chain * o.thinning, false, Keep::Thinned);
    chain.burn_in = o.burn_in;
    chain.thinning = o.thinning;
    return {Phase::of("warm-up", o.warm, true), chain};
  }
  int64_t planned_nfe(int64_t n, const Prior&) const { return 0; }
  State init(const StepContext& ctx) const { return {ctx.rng.uniform().reshape({-1, 1})}; }
  State enter(State s, const StepContext&) const { return s; }
  Step<State> step(State s, const StepContext& ctx) const {
    ctx.nfe.forward += s.x.size(0);
    s.x = ctx.phase == 0 ? s.x + 1.0 : s.x * 2.0;
    Step<State> out;
    out.info.add(ctx.phase == 0 ? "warm_x" : "x", s.x.flatten());
    out.state = std::move(s);
    return out;
  }
  at::Tensor sample(const State& s) const { return s.x; }
  at::Tensor ok(const State& s, const StepContext&) const { return (s.x < o.limit).flatten(); }
  std::string divergence(const StepContext&) const { return "x >= " + format_value(o.limit); }
};

SamplerRegistrar reg(kernel_entry<Doubling>("test_doubling", "toy kernel of the driver test"));

class ScalarPrior : public Prior {
 public:
  std::string name() const override { return "scalar"; }
  Shape data_shape() const override { return {1}; }
  at::ScalarType dtype() const override { return at::kDouble; }
};

}  // namespace

TEST_CASE("The driver runs phases, burn-in, thinning and divergence as the kernel declares them", "[driver]") {
  ScalarPrior prior;
  auto gen = make_generator(1);
  LowRankOperator op(1, 1, gen);
  Problem problem(prior, op, GaussianNoise{1.0}, at::zeros({1, 1}, at::kDouble));
  // 4 chains, 2 samples each: chain steps t = 1..5, kept at t = 3 and 5. x after the chain step t is
  // (u + 2) 2^t: the rows with u >= 0.5 reach 80 at t = 5 and diverge there, the others survive.
  const auto s = chain_seeds(4, 17);
  std::vector<double> u;
  for (auto seed : s) {
    auto g = make_generator(seed);
    u.push_back(at::rand({1}, g, at::TensorOptions().dtype(at::kDouble)).item<double>());
  }
  std::vector<uint8_t> expect_diverged;
  std::vector<double> expect_samples;
  for (double v : u) {
    expect_diverged.push_back((v + 2) * 32 >= 80);
    if (!expect_diverged.back()) {
      expect_samples.push_back((v + 2) * 8);
      expect_samples.push_back((v + 2) * 32);
    }
  }
  // Both kinds of chain are present, or the test would not exercise row dropping.
  REQUIRE(std::count(expect_diverged.begin(), expect_diverged.end(), 1) > 0);
  REQUIRE(std::count(expect_diverged.begin(), expect_diverged.end(), 0) > 0);

  for (int64_t batch : {0, 1, 3}) {
    INFO("batch_size " << batch);
    auto out = make_sampler("test_doubling", {{"batch_size", batch}})->run(problem, 8, s);
    CHECK(out.diverged == expect_diverged);
    REQUIRE(out.samples.size(0) == static_cast<int64_t>(expect_samples.size()));
    for (size_t i = 0; i < expect_samples.size(); ++i)
      CHECK(out.samples[static_cast<int64_t>(i)].item<double>() == Approx(expect_samples[i]).epsilon(1e-15));
    CHECK(out.warmup_nfe.forward == 4 * 2);  // warm-up counted apart
    const int64_t survivors = std::count(expect_diverged.begin(), expect_diverged.end(), 0);
    CHECK(out.sampling_nfe.forward == 4 * 5);  // diverged rows also took their fifth step
    CHECK(out.divergence_message.find("diverged (x >= 80) at chain step 4") != std::string::npos);
    // Trace: the mean over the rows alive at each step; diverged_chains counts over all phases' steps.
    REQUIRE(out.trace.at("x").size() == 5);
    REQUIRE(out.trace.at("warm_x").size() == 2);
    double mean_u = 0;
    for (double v : u) mean_u += v / 4;
    CHECK(out.trace.at("warm_x")[1] == Approx(mean_u + 2).epsilon(1e-12));
    CHECK(out.trace.at("diverged_chains").size() == 7);
    CHECK(out.trace.at("diverged_chains").back() == Approx(4 - survivors));
    CHECK(out.trace.at("diverged_chains")[5] == 0);
  }
}

TEST_CASE("Chains diverged by each step do not depend on batching when whole batches die early", "[driver]") {
  ScalarPrior prior;
  auto gen = make_generator(1);
  LowRankOperator op(1, 1, gen);
  Problem problem(prior, op, GaussianNoise{1.0}, at::zeros({1, 1}, at::kDouble));
  // Limit 20: x = (u + 2) 2^t reaches it at chain step t = 3 (global step 4) when u >= 0.5, else at t = 4
  // (global step 5); every chain dies, so each batch stops at its own last death.
  const auto s = chain_seeds(4, 17);
  std::vector<double> expect(7, 0.0);
  for (auto seed : s) {
    auto g = make_generator(seed);
    const double u = at::rand({1}, g, at::TensorOptions().dtype(at::kDouble)).item<double>();
    for (int64_t step = u >= 0.5 ? 4 : 5; step < 7; ++step) expect[step] += 1;
  }
  REQUIRE(expect[4] > 0);
  REQUIRE(expect[4] < 4);  // deaths at both steps, or the batches would all stop together
  for (int64_t batch : {0, 1, 3}) {
    INFO("batch_size " << batch);
    auto out = make_sampler("test_doubling", {{"batch_size", batch}, {"limit", 20.0}})->run(problem, 8, s);
    CHECK(out.trace.at("diverged_chains") == expect);
  }
}

TEST_CASE("Capability checks come from a kernel's declared needs", "[driver]") {
  ScalarPrior prior;
  auto gen = make_generator(1);
  LowRankOperator op(1, 1, gen);
  for (const char* name : {"noise_langevin", "noise_mala", "noise_pcn", "dps", "lgd", "almc", "daps"}) {
    INFO(name);
    auto s = make_sampler(name);
    try {
      s->check(prior, op);
      FAIL("no ConfigError");
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      CHECK(msg.find(std::string("sampler ") + name) != std::string::npos);
      CHECK(msg.find("prior 'scalar' has no") != std::string::npos);
    }
    CHECK_NOTHROW(s->planned_nfe(4, prior));  // planning NFE is a formula, never the capability check
  }
  Needs linear;
  linear.linear_operator = true;
  CHECK_NOTHROW(check_needs(linear, "x", prior, &op));
}

TEST_CASE("Single steps run the sampling phase of a kernel outside the driver's loop", "[driver]") {
  ScalarPrior prior;
  auto gen = make_generator(1);
  LowRankOperator op(1, 1, gen);
  Problem problem(prior, op, GaussianNoise{1.0}, at::zeros({1, 1}, at::kDouble));
  auto steps = make_sampler("test_doubling")->single_steps(problem, 3, 5);
  REQUIRE(steps);
  steps->step();
  steps->step();
  CHECK(steps->nfe().forward == 2 * 3);  // the warm-up phase was entered, not run
  CHECK(make_sampler("exact")->single_steps(problem, 3, 5) == nullptr);
}

// ChainRng::fill_normal_block (DAPS's and ALMC's per-level noise): the draws normal_block returns, bit for bit, in
// a block kept across calls (no fresh mapping per call); reallocated when the chains or the shape change.
TEST_CASE("A filled normal block holds the draws of normal_block and keeps its storage", "[samplers][rng]") {
  for (auto dtype : {at::kDouble, at::kFloat}) {
    for (const Shape& shape : {Shape{8}, Shape{3, 5, 7}, Shape{800}}) {
      INFO("dtype " << c10::toString(dtype) << ", " << shape_string(shape));
      std::vector<at::Generator> g1{make_generator(3), make_generator(4), make_generator(5)};
      std::vector<at::Generator> g2{make_generator(3), make_generator(4), make_generator(5)};
      std::vector<int64_t> rows{0, 2};
      ChainRng fresh(g1, rows, dtype), kept(g2, rows, dtype);
      at::Tensor block;
      for (int call = 0; call < 3; ++call) {
        const auto expected = fresh.normal_block(21, shape);
        const void* before = block.defined() ? block.data_ptr() : nullptr;
        kept.fill_normal_block(block, 21, shape);
        CHECK(at::equal(block, expected));
        if (call > 0) CHECK(block.data_ptr() == before);
      }
      std::vector<int64_t> all{0, 1, 2};
      ChainRng fresh3(g1, all, dtype), kept3(g2, all, dtype);
      kept3.fill_normal_block(block, 21, shape);
      CHECK(block.size(0) == 3);
      CHECK(at::equal(block, fresh3.normal_block(21, shape)));
    }
  }
}
