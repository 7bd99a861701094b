#include "nn/train_consistency.h"

#include <iostream>

#include "core/errors.h"
#include "core/sha256.h"
#include "core/threads.h"
#include "nn/edm.h"
#include "nn/karras.h"

namespace psbench::nn {

const char* distance_name(ConsistencyDistance d) { return d == ConsistencyDistance::L2 ? "l2" : "pseudo_huber"; }

void train_consistency(const TrainSettings& s, const ConsistencyTraining& config) {
  const std::string& teacher_path = config.teacher;
  const int64_t intervals = config.intervals;
  const double target_ema = config.target_ema;
  const bool l2 = config.distance == ConsistencyDistance::L2;
  torch::manual_seed(static_cast<uint64_t>(s.seed));
  set_compute_threads(static_cast<int>(s.threads));
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
                                  std::to_string(target_ema) + " distance=" + distance_name(config.distance);
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
    auto loss = l2 ? (sq / dim).mean() : (torch::sqrt(sq + huber_c * huber_c) - huber_c).mean();
    loss.backward();
    opt.step();
    ema_update(*target, *student, target_ema);
    ema_update(*ema, *student, s.ema);
    return loss.item<double>();
  };
  auto checkpoint_fn = [&](const CheckpointState& st) {
    save_checkpoint(s.checkpoint, fingerprint, st, modules, opt);
    auto meta = teacher_file.meta;
    meta["training_command"] = s.command;
    meta["steps"] = std::to_string(st.step);
    meta["wall_seconds"] = std::to_string(st.seconds);
    meta["threads"] = std::to_string(s.threads);
    meta["teacher_sha256"] = teacher_sha;
    meta["teacher_training_command"] = teacher_file.meta.count("training_command") ? teacher_file.meta.at("training_command") : "";
    save_model(s.out, ema, meta);
  };
  state = training_loop(s, state, step_fn, checkpoint_fn);
  std::cerr << "wrote " << s.out << " (step " << state.step << ")\n";
}

}  // namespace psbench::nn
