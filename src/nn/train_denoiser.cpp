#include "nn/train_denoiser.h"

#include <iostream>

#include "core/threads.h"
#include "nn/edm.h"

namespace psbench::nn {

void train_denoiser(const TrainSettings& s, const DenoiserTraining& config) {
  const UNetConfig& unet = config.unet;
  const double p_mean = config.p_mean, p_std = config.p_std, sigma_data = config.sigma_data;
  torch::manual_seed(static_cast<uint64_t>(s.seed));
  set_compute_threads(static_cast<int>(s.threads));
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
    save_model(s.out, ema, {{"training_command", s.command},
                            {"steps", std::to_string(st.step)},
                            {"wall_seconds", std::to_string(st.seconds)},
                            {"threads", std::to_string(s.threads)},
                            {"parameters", std::to_string(model->net()->parameter_count())},
                            {"data", "Fashion-MNIST train (" + std::to_string(n) + " images)"},
                            {"shape", "1,28,28"}});
  };
  state = training_loop(s, state, step_fn, checkpoint_fn);
  std::cerr << "wrote " << s.out << " (step " << state.step << ")\n";
}

}  // namespace psbench::nn
