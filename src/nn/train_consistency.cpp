// psbench train consistency --teacher FILE: consistency distillation (Song et al. 2023, CD) of an EDM
// denoiser into a one-step generator. The student starts from the teacher's weights; at each step, for
// a random grid interval n of the Karras grid sigma_1 = sigma_min < ... < sigma_N = sigma_max (rho 7):
//   x_{n+1} = x_0 + sigma_{n+1} z,  x_hat_n = one Heun step of the teacher's probability-flow ODE to sigma_n,
//   loss = d(f_theta(x_{n+1}, sigma_{n+1}), f_target(x_hat_n, sigma_n)),
// with the target network an EMA of the student (decay --target-ema) and d the pseudo-Huber distance
// sqrt(||a - b||^2 + c^2) - c, c = 0.00054 sqrt(dim) (iCT), or squared L2.
#include <iostream>

#include "cli/options_parse.h"
#include "cli/train.h"
#include "core/errors.h"
#include "core/sha256.h"
#include "nn/edm.h"
#include "nn/training.h"
#include "priors/ode_generator.h"

namespace psbench::nn {
namespace {
namespace po = boost::program_options;

int train_consistency(const std::vector<std::string>& args) {
  TrainSettings s;
  s.lr = 1e-4;
  s.warmup = 0;
  std::string teacher_path, distance = "pseudo_huber";
  int64_t intervals = 18;
  double target_ema = 0.95;
  po::options_description desc("psbench train consistency --teacher FILE --out FILE [options]");
  desc.add_options()("help,h", "show this help");
  add_settings_options(desc, s);
  desc.add_options()("teacher", po::value(&teacher_path), "EDM denoiser model file (psbench train denoiser)")(
      "intervals", po::value(&intervals)->default_value(intervals), "N: points of the Karras discretisation grid")(
      "target-ema", po::value(&target_ema)->default_value(target_ema), "EMA decay of the target network")(
      "distance", po::value(&distance)->default_value(distance), "pseudo_huber or l2");
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  validate_settings(s, "consistency");
  if (teacher_path.empty()) throw UsageError("train consistency: missing --teacher FILE");
  if (intervals < 2) throw UsageError("train consistency: --intervals must be >= 2");
  if (!(target_ema >= 0 && target_ema < 1)) throw UsageError("train consistency: --target-ema must be in [0, 1)");
  if (distance != "pseudo_huber" && distance != "l2")
    throw UsageError("train consistency: --distance must be pseudo_huber or l2, got '" + distance + "'");

  torch::manual_seed(static_cast<uint64_t>(s.seed));
  at::set_num_threads(static_cast<int>(s.threads));
  auto teacher_file = load_model(teacher_path);
  auto teacher = teacher_file.model;
  if (teacher->precond().kind != Parameterization::Denoiser)
    throw ConfigError("train consistency: --teacher '" + teacher_path + "' is not an EDM denoiser");
  for (auto& p : teacher->parameters()) p.set_requires_grad(false);
  teacher->eval();
  PrecondConfig pc = teacher->precond();
  pc.kind = Parameterization::Consistency;
  const UNetConfig arch = teacher->unet_config();
  Preconditioned student(arch, pc), target(arch, pc), ema(arch, pc);
  copy_weights(*student, *teacher);
  copy_weights(*target, *student);
  copy_weights(*ema, *student);
  for (auto* m : {target.get(), ema.get()}) {
    m->eval();
    for (auto& p : m->parameters()) p.set_requires_grad(false);
  }
  torch::optim::Adam opt(student->parameters(), torch::optim::AdamOptions(s.lr));
  const std::string teacher_sha = sha256_file(teacher_path);
  const std::string fingerprint = "consistency " + settings_fingerprint(s) + " teacher=" + teacher_sha +
                                  " intervals=" + std::to_string(intervals) + " target_ema=" +
                                  std::to_string(target_ema) + " distance=" + distance;
  std::map<std::string, torch::nn::Module*> modules{{"student", student.get()}, {"target", target.get()}, {"ema", ema.get()}};
  CheckpointState state;
  if (s.resume) {
    state = load_checkpoint(s.checkpoint, fingerprint, modules, opt);
    std::cerr << "resumed from " << s.checkpoint << " at step " << state.step << "\n";
  }
  const auto data = fashion_mnist_training_images(s.data_root, s.limit);
  const int64_t n = data.size(0);
  auto grid = karras_sigmas(intervals, pc.sigma_min, pc.sigma_max, 7.0);  // descending, then 0
  grid.pop_back();
  std::reverse(grid.begin(), grid.end());  // sigma_1 = sigma_min ... sigma_N = sigma_max
  const auto sig = torch::tensor(grid, torch::kFloat);
  const double dim = static_cast<double>(data[0].numel());
  const double huber_c = 0.00054 * std::sqrt(dim);
  std::cerr << "train consistency: teacher " << teacher_path << " (" << arch.to_string() << "), N = " << intervals
            << ", " << n << " images, batch " << s.batch << ", " << s.threads << " thread(s)\n";

  auto step_fn = [&](int64_t step) {
    auto gen = step_generator(s.seed, step, 0xcd);
    auto idx = at::randint(n, {s.batch}, gen, at::kLong);
    auto x0 = data.index_select(0, idx);
    auto k = at::randint(intervals - 1, {s.batch}, gen, at::kLong);  // interval [sigma_k, sigma_{k+1}]
    auto z = at::randn(x0.sizes(), gen);
    auto t_hi = sig.index_select(0, k + 1), t_lo = sig.index_select(0, k);
    auto hi4 = t_hi.view({-1, 1, 1, 1}), lo4 = t_lo.view({-1, 1, 1, 1});
    auto x_hi = x0 + hi4 * z;
    torch::Tensor target_out;
    {
      torch::NoGradGuard ng;
      auto d0 = (x_hi - teacher->forward(x_hi, t_hi)) / hi4;
      auto x_euler = x_hi + (lo4 - hi4) * d0;
      auto d1 = (x_euler - teacher->forward(x_euler, t_lo)) / lo4;
      auto x_lo = x_hi + (lo4 - hi4) * 0.5 * (d0 + d1);
      target_out = target->forward(x_lo, t_lo);
    }
    set_learning_rate(opt, warmup_lr(s, step));
    opt.zero_grad();
    auto diff = (student->forward(x_hi, t_hi) - target_out).flatten(1);
    auto sq = diff.pow(2).sum(1);
    auto loss = distance == "l2" ? (sq / dim).mean() : (torch::sqrt(sq + huber_c * huber_c) - huber_c).mean();
    loss.backward();
    opt.step();
    ema_update(*target, *student, target_ema);
    ema_update(*ema, *student, s.ema);
    return loss.item<double>();
  };
  auto checkpoint_fn = [&](const CheckpointState& st) {
    save_checkpoint(s.checkpoint, fingerprint, st, modules, opt);
    auto meta = teacher_file.meta;
    meta["training_command"] = command_line("consistency", args);
    meta["steps"] = std::to_string(st.step);
    meta["wall_seconds"] = std::to_string(st.seconds);
    meta["threads"] = std::to_string(s.threads);
    meta["teacher_sha256"] = teacher_sha;
    meta["teacher_training_command"] = teacher_file.meta.count("training_command") ? teacher_file.meta.at("training_command") : "";
    save_model(s.out, ema, meta);
  };
  state = training_loop(s, state, step_fn, checkpoint_fn);
  std::cerr << "wrote " << s.out << " (step " << state.step << ")\n";
  return 0;
}

const TrainerRegistrar reg({"consistency", "consistency distillation of an EDM denoiser into a one-step generator",
                            train_consistency});

}  // namespace
}  // namespace psbench::nn
