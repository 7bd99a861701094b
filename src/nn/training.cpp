#include "nn/training.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/errors.h"
#include "core/rng.h"
#include "data/fashion_mnist.h"

namespace psbench::nn {

std::string settings_fingerprint(const TrainSettings& s) {
  std::ostringstream os;
  os << "seed=" << s.seed << " batch=" << s.batch << " lr=" << s.lr << " warmup=" << s.warmup << " ema=" << s.ema
     << " limit=" << s.limit << " data=" << s.data_root;
  return os.str();
}

torch::Tensor fashion_mnist_training_images(const std::string& root, int64_t limit) {
  auto split = load_fashion_mnist(root.empty() ? kFashionMnistDefaultRoot : root, "train");
  auto images = split->images;
  if (limit > 0) images = images.slice(0, 0, std::min(limit, split->size()));
  return fashion_mnist_to_float(images).unsqueeze(1).contiguous();
}

at::Generator step_generator(int64_t seed, int64_t step, uint64_t stream) {
  return make_generator(derive_seed({static_cast<uint64_t>(seed), static_cast<uint64_t>(step), stream}));
}

void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
}

double warmup_lr(const TrainSettings& s, int64_t step) {
  if (s.warmup <= 0 || step >= s.warmup) return s.lr;
  return s.lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup);
}

void save_checkpoint(const std::string& path, const std::string& fingerprint, const CheckpointState& state,
                     const std::map<std::string, torch::nn::Module*>& modules, torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive ar;
  ar.write("fingerprint", c10::IValue(fingerprint));
  ar.write("step", c10::IValue(state.step));
  ar.write("seconds", c10::IValue(state.seconds));
  for (const auto& [name, m] : modules) {
    torch::serialize::OutputArchive sub;
    m->save(sub);
    ar.write("module_" + name, sub);
  }
  torch::serialize::OutputArchive o;
  opt.save(o);
  ar.write("optimizer", o);
  const std::string tmp = path + ".tmp";
  ar.save_to(tmp);
  std::filesystem::rename(tmp, path);  // atomic: an interruption never leaves half a checkpoint
}

CheckpointState load_checkpoint(const std::string& path, const std::string& fingerprint,
                                const std::map<std::string, torch::nn::Module*>& modules,
                                torch::optim::Optimizer& opt) {
  if (!std::filesystem::is_regular_file(path))
    throw ConfigError("--resume: checkpoint '" + path + "' does not exist");
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path);
  } catch (const c10::Error&) {
    throw ConfigError("--resume: '" + path + "' is not a readable checkpoint");
  }
  c10::IValue fp, step, seconds;
  if (!ar.try_read("fingerprint", fp) || !fp.isString() || !ar.try_read("step", step) ||
      !ar.try_read("seconds", seconds))
    throw ConfigError("--resume: '" + path + "' is not a psbench checkpoint");
  if (fp.toStringRef() != fingerprint)
    throw ConfigError("--resume: checkpoint '" + path + "' was made with different settings (" +
                      fp.toStringRef() + "); now: " + fingerprint);
  for (const auto& [name, m] : modules) {
    torch::serialize::InputArchive sub;
    ar.read("module_" + name, sub);
    m->load(sub);
  }
  torch::serialize::InputArchive o;
  ar.read("optimizer", o);
  opt.load(o);
  return {step.toInt(), seconds.toDouble()};
}

namespace {
std::string duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}
}  // namespace

CheckpointState training_loop(const TrainSettings& s, CheckpointState state,
                              const std::function<double(int64_t)>& step_fn,
                              const std::function<void(const CheckpointState&)>& checkpoint_fn) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const double seconds0 = state.seconds;
  const int64_t first = state.step;
  double loss_sum = 0;
  int64_t loss_n = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };
  while (state.step < s.steps) {
    const double loss = step_fn(state.step);
    if (!std::isfinite(loss))
      throw std::runtime_error("training diverged at step " + std::to_string(state.step) +
                               " (loss is not finite); lower --lr or resume from the last checkpoint");
    loss_sum += loss;
    ++loss_n;
    ++state.step;
    state.seconds = seconds0 + elapsed();
    const int64_t done_here = state.step - first;
    if (s.log_every > 0 && (state.step % s.log_every == 0 || state.step == s.steps)) {
      const double per_step = elapsed() / static_cast<double>(done_here);
      std::fprintf(stderr, "step %lld/%lld  loss %.5f  lr %.2e  %.3f s/step  elapsed %s  ETA %s\n",
                   static_cast<long long>(state.step), static_cast<long long>(s.steps), loss_sum / loss_n,
                   warmup_lr(s, state.step - 1), per_step, duration(state.seconds).c_str(),
                   duration(per_step * static_cast<double>(s.steps - state.step)).c_str());
      loss_sum = 0;
      loss_n = 0;
    }
    const bool stop_here = s.stop_after > 0 && done_here >= s.stop_after && state.step < s.steps;
    if (state.step == s.steps || stop_here || (s.checkpoint_every > 0 && state.step % s.checkpoint_every == 0))
      checkpoint_fn(state);
    if (stop_here) {
      std::fprintf(stderr, "stopped after %lld steps (--stop-after); continue with --resume\n",
                   static_cast<long long>(done_here));
      break;
    }
  }
  return state;
}

}  // namespace psbench::nn
