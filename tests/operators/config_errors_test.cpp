// Bad task input is a one-line ConfigError naming the offending option.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "operator_test_util.h"

using namespace psbench;
using psbench::test::build_task;
using psbench::test::fixture_path;
using Catch::Matchers::Contains;

namespace {
// Runs make + build and returns the ConfigError message ("" when nothing was thrown).
std::string config_error(const std::string& task, const Shape& shape, std::map<std::string, OptionValue> options) {
  try {
    build_task(task, shape, 1, std::move(options));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("bad task input names the option", "[operators][errors]") {
  const Shape img{1, 28, 28};
  SECTION("super-resolution factor must divide the side") {
    for (const std::string t : {"sr_avgpool", "sr_bicubic"}) {
      auto msg = config_error(t, img, {{"factor", int64_t{3}}});
      REQUIRE_THAT(msg, Contains("factor=3") && Contains("28"));
      REQUIRE_THAT(config_error(t, {1, 28, 30}, {{"factor", int64_t{4}}}), Contains("factor=4") && Contains("width"));
      REQUIRE(config_error(t, img, {{"factor", int64_t{7}}}).empty());
    }
  }
  SECTION("kernels must fit and be odd") {
    REQUIRE_THAT(config_error("gaussian_blur", img, {{"kernel_size", int64_t{29}}}), Contains("kernel_size=29"));
    REQUIRE_THAT(config_error("gaussian_blur", img, {{"kernel_size", int64_t{6}}}), Contains("kernel_size=6"));
    REQUIRE_THAT(config_error("motion_blur", {1, 28, 9}, {{"kernel_size", int64_t{11}}}), Contains("kernel_size=11"));
    REQUIRE_THAT(config_error("gaussian_blur", img, {{"std", -1.0}}), Contains("std="));
    REQUIRE_THAT(config_error("motion_blur", img, {{"intensity", 1.5}}), Contains("intensity="));
    REQUIRE(config_error("gaussian_blur", img, {{"kernel_size", int64_t{27}}}).empty());
  }
  SECTION("observed fraction in (0, 1]") {
    for (double bad : {0.0, -0.1, 1.01})
      REQUIRE_THAT(config_error("inpaint_random", img, {{"observed", bad}}), Contains("observed="));
    REQUIRE(config_error("inpaint_random", img, {{"observed", 1.0}}).empty());
  }
  SECTION("the box must fit inside its margin") {
    REQUIRE_THAT(config_error("inpaint_box", img, {{"box_size", int64_t{20}}, {"margin", int64_t{5}}}),
                 Contains("box_size=20") && Contains("margin=5"));
    REQUIRE_THAT(config_error("inpaint_box", img, {{"box_size", int64_t{29}}}), Contains("box_size=29"));
    REQUIRE(config_error("inpaint_box", img, {{"box_size", int64_t{20}}, {"margin", int64_t{4}}}).empty());
  }
  SECTION("sigma_y and scale must be positive") {
    REQUIRE_THAT(config_error("hdr", img, {{"sigma_y", 0.0}}), Contains("sigma_y="));
    REQUIRE_THAT(config_error("sr_avgpool", img, {{"sigma_y", -1.0}}), Contains("sigma_y="));
    REQUIRE_THAT(config_error("hdr", img, {{"scale", 0.0}}), Contains("scale="));
  }
  SECTION("images only") {
    REQUIRE_THAT(config_error("gaussian_blur", {784}, {}), Contains("[C, H, W]"));
    REQUIRE_THAT(config_error("phase_retrieval", {28, 28}, {}), Contains("[C, H, W]"));
  }
  SECTION("learned operators must load and fit") {
    REQUIRE_THAT(config_error("learned", img, {}), Contains("path"));
    REQUIRE_THAT(config_error("learned", img, {{"path", std::string("/nonexistent/op.pt")}}),
                 Contains("path=/nonexistent/op.pt"));
    auto garbage = std::filesystem::temp_directory_path() / "psbench_not_torchscript.pt";
    std::ofstream(garbage) << "this is not a TorchScript archive\n";
    REQUIRE_THAT(config_error("learned", img, {{"path", garbage.string()}}), Contains("path=" + garbage.string()));
    std::filesystem::remove(garbage);
    // learned_halve maps [1, 8, 8] to [1, 4, 4]: not the image shape required by default.
    REQUIRE_THAT(config_error("learned", {1, 8, 8}, {{"path", fixture_path("learned_halve.pt")}}),
                 Contains("output_shape=input"));
    REQUIRE_THAT(config_error("learned", {1, 8, 8},
                              {{"path", fixture_path("learned_halve.pt")}, {"output_shape", std::string("1x8x8")}}),
                 Contains("output_shape=1x8x8"));
    REQUIRE_THAT(config_error("learned", {1, 8, 8},
                              {{"path", fixture_path("learned_halve.pt")}, {"output_shape", std::string("big")}}),
                 Contains("output_shape='big'"));
    // A module that cannot run on the data (a 1-channel conv given 3 channels).
    REQUIRE_THAT(config_error("learned", {3, 8, 8}, {{"path", fixture_path("learned_softblur.pt")}}),
                 Contains("path="));
  }
  SECTION("messages are one line") {
    for (auto msg : {config_error("learned", {3, 8, 8}, {{"path", fixture_path("learned_softblur.pt")}}),
                     config_error("learned", img, {{"path", std::string("/dev/null")}})}) {
      REQUIRE_FALSE(msg.empty());
      REQUIRE(msg.find('\n') == std::string::npos);
    }
  }
}
