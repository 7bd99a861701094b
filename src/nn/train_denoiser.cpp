// psbench train denoiser: an EDM denoiser (UNet + preconditioning) on Fashion-MNIST, trained with the
// EDM loss: ln sigma ~ N(P_mean, P_std^2), weight (sigma^2 + sd^2) / (sigma sd)^2.
#include <iostream>

#include "cli/options_parse.h"
#include "cli/train.h"
#include "core/errors.h"
#include "nn/edm.h"
#include "nn/training.h"

namespace psbench::nn {
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

int train_denoiser(const std::vector<std::string>& args) {
  TrainSettings s;
  UNetConfig unet;
  std::string mult = "1,2,2";
  double p_mean = -1.2, p_std = 1.2, sigma_data = 0.5;
  bool no_attention = false;
  po::options_description desc("psbench train denoiser --out FILE [options]");
  desc.add_options()("help,h", "show this help");
  add_settings_options(desc, s);
  desc.add_options()("base", po::value(&unet.base)->default_value(unet.base), "UNet channels at full resolution")(
      "mult", po::value(&mult)->default_value(mult), "channel multiplier per level (28 -> 14 -> 7)")(
      "blocks", po::value(&unet.blocks)->default_value(unet.blocks), "residual blocks per level")(
      "no-attention", po::bool_switch(&no_attention), "no self-attention at the lowest resolution")(
      "p-mean", po::value(&p_mean)->default_value(p_mean), "mean of ln sigma in training")(
      "p-std", po::value(&p_std)->default_value(p_std), "std of ln sigma in training")(
      "sigma-data", po::value(&sigma_data)->default_value(sigma_data), "EDM sigma_data");
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  validate_settings(s, "denoiser");
  unet.mult = parse_mult(mult);
  unet.attention = !no_attention;
  if (unet.base < 8 || unet.blocks < 1) throw UsageError("train denoiser: --base must be >= 8 and --blocks >= 1");
  if (28 % (1 << (unet.mult.size() - 1)) != 0)
    throw UsageError("train denoiser: 28x28 images allow at most 3 levels in --mult (28 -> 14 -> 7)");
  if (!(p_std > 0) || !(sigma_data > 0)) throw UsageError("train denoiser: --p-std and --sigma-data must be > 0");

  torch::manual_seed(static_cast<uint64_t>(s.seed));
  at::set_num_threads(static_cast<int>(s.threads));
  PrecondConfig pc;
  pc.sigma_data = sigma_data;
  Preconditioned model(unet, pc), ema(unet, pc);
  copy_weights(*ema, *model);
  ema->eval();
  for (auto& p : ema->parameters()) p.set_requires_grad(false);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(s.lr));
  const std::string fingerprint = "denoiser " + settings_fingerprint(s) + " arch=" + unet.to_string() +
                                  " p_mean=" + std::to_string(p_mean) + " p_std=" + std::to_string(p_std) +
                                  " sigma_data=" + std::to_string(sigma_data);
  std::map<std::string, torch::nn::Module*> modules{{"model", model.get()}, {"ema", ema.get()}};
  CheckpointState state;
  if (s.resume) {
    state = load_checkpoint(s.checkpoint, fingerprint, modules, opt);
    std::cerr << "resumed from " << s.checkpoint << " at step " << state.step << "\n";
  }
  const auto data = fashion_mnist_training_images(s.data_root, s.limit);
  const int64_t n = data.size(0);
  std::cerr << "train denoiser: " << model->net()->parameter_count() << " parameters (" << unet.to_string()
            << "), " << n << " images, batch " << s.batch << ", " << s.threads << " thread(s)\n";

  const double sd2 = sigma_data * sigma_data;
  auto step_fn = [&](int64_t step) {
    auto gen = step_generator(s.seed, step, 0xde);
    auto idx = at::randint(n, {s.batch}, gen, at::kLong);
    auto x0 = data.index_select(0, idx);
    auto sigma = at::exp(at::randn({s.batch}, gen) * p_std + p_mean);
    auto noise = at::randn(x0.sizes(), gen);
    set_learning_rate(opt, warmup_lr(s, step));
    opt.zero_grad();
    auto s4 = sigma.view({-1, 1, 1, 1});
    auto d = model->forward(x0 + s4 * noise, sigma);
    auto weight = (s4 * s4 + sd2) / (s4 * s4 * sd2);
    auto loss = (weight * (d - x0).pow(2)).mean();
    loss.backward();
    opt.step();
    ema_update(*ema, *model, s.ema);
    return loss.item<double>();
  };
  auto checkpoint_fn = [&](const CheckpointState& st) {
    save_checkpoint(s.checkpoint, fingerprint, st, modules, opt);
    save_model(s.out, ema, {{"training_command", command_line("denoiser", args)},
                            {"steps", std::to_string(st.step)},
                            {"wall_seconds", std::to_string(st.seconds)},
                            {"threads", std::to_string(s.threads)},
                            {"parameters", std::to_string(model->net()->parameter_count())},
                            {"data", "Fashion-MNIST train (" + std::to_string(n) + " images)"},
                            {"shape", "1,28,28"}});
  };
  state = training_loop(s, state, step_fn, checkpoint_fn);
  std::cerr << "wrote " << s.out << " (step " << state.step << ")\n";
  return 0;
}

const TrainerRegistrar reg({"denoiser", "EDM denoiser (UNet, EMA weights) on Fashion-MNIST", train_denoiser});

}  // namespace
}  // namespace psbench::nn
