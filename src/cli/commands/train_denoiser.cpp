// psbench train denoiser: options of the EDM denoiser training (nn/train_denoiser.h).
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "cli/train.h"
#include "cli/train_options.h"
#include "nn/train_denoiser.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

std::vector<int64_t> parse_mult(const std::string& s) {
  std::vector<int64_t> m;
  std::stringstream ss(s);
  std::string item;
  try {
    while (std::getline(ss, item, ',')) m.push_back(std::stoll(item));
  } catch (const std::exception&) {
    throw UsageError("train denoiser: --mult must be a comma-separated list of positive integers, got '" + s + "'");
  }
  for (auto v : m)
    if (v < 1) throw UsageError("train denoiser: --mult entries must be >= 1, got '" + s + "'");
  if (m.empty()) throw UsageError("train denoiser: --mult is empty");
  return m;
}

int cmd_train_denoiser(const std::vector<std::string>& args) {
  nn::TrainSettings s;
  nn::DenoiserTraining config;
  nn::UNetConfig& unet = config.unet;
  std::string mult = "1,2,2";
  bool no_attention = false;
  po::options_description desc("psbench train denoiser --out FILE [options]");
  desc.add_options()("help,h", "show this help");
  add_train_options(desc, s);
  desc.add_options()("base", po::value(&unet.base)->default_value(unet.base), "UNet channels at full resolution")(
      "mult", po::value(&mult)->default_value(mult), "channel multiplier per level (28 -> 14 -> 7)")(
      "blocks", po::value(&unet.blocks)->default_value(unet.blocks), "residual blocks per level")(
      "no-attention", po::bool_switch(&no_attention), "no self-attention at the lowest resolution")(
      "p-mean", po::value(&config.p_mean)->default_value(config.p_mean), "mean of ln sigma in training")(
      "p-std", po::value(&config.p_std)->default_value(config.p_std), "std of ln sigma in training")(
      "sigma-data", po::value(&config.sigma_data)->default_value(config.sigma_data), "EDM sigma_data");
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  validate_train_settings(s, "denoiser", args);
  unet.mult = parse_mult(mult);
  unet.attention = !no_attention;
  if (unet.base < 8 || unet.blocks < 1) throw UsageError("train denoiser: --base must be >= 8 and --blocks >= 1");
  if (28 % (1 << (unet.mult.size() - 1)) != 0)
    throw UsageError("train denoiser: 28x28 images allow at most 3 levels in --mult (28 -> 14 -> 7)");
  if (!(config.p_std > 0) || !(config.sigma_data > 0))
    throw UsageError("train denoiser: --p-std and --sigma-data must be > 0");
  nn::train_denoiser(s, config);
  return 0;
}

const TrainerRegistrar reg_train_denoiser({"denoiser", "EDM denoiser (UNet, EMA weights) on Fashion-MNIST", cmd_train_denoiser});

}  // namespace
}  // namespace psbench
