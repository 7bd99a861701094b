#pragma once
// What the trainers share: the seeded per-step randomness, checkpoints that resume bit-exactly, the
// progress line, and the Fashion-MNIST training images as float tensors. Only the training itself lives
// here; the `psbench train KIND` commands that parse options live in cli/commands/.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace psbench::nn {

// Common command-line settings of a training run.
struct TrainSettings {
  std::string out;               // final model file (EMA weights); also refreshed at every checkpoint
  std::string checkpoint;        // checkpoint file (default: out + ".ckpt")
  int64_t steps = 1000;          // total optimisation steps
  int64_t batch = 64;
  double lr = 5e-4;
  int64_t warmup = 200;          // linear learning-rate warm-up steps
  double ema = 0.999;            // EMA decay per step of the weights written to `out`
  int64_t seed = 0;
  int64_t threads = 1;
  int64_t checkpoint_every = 500;
  int64_t log_every = 50;
  int64_t stop_after = 0;        // stop (with a checkpoint) after this many steps in this invocation; 0 = run to the end
  int64_t limit = 0;             // use only the first `limit` training images (0 = all)
  bool resume = false;
  std::string data_root;
  std::string command;           // the command line that started the run, stored in the model's metadata
};

// The settings that define the run's result (not threads, steps, logging or checkpoint cadence).
std::string settings_fingerprint(const TrainSettings& s);

// Fashion-MNIST training split as float [N, 1, 28, 28] in [-1, 1] (first `limit` images if > 0).
torch::Tensor fashion_mnist_training_images(const std::string& root, int64_t limit);

// The random generator of optimisation step `step` (same seed and step -> same draws, so a resumed run
// draws exactly what an uninterrupted one would).
at::Generator step_generator(int64_t seed, int64_t step, uint64_t stream);

// Adam with linear warm-up of the learning rate.
void set_learning_rate(torch::optim::Optimizer& opt, double lr);
double warmup_lr(const TrainSettings& s, int64_t step);

struct CheckpointState {
  int64_t step = 0;
  double seconds = 0;  // training wall time accumulated over all invocations
};

// A checkpoint holds named modules, the optimiser state, the step, the elapsed training time and a
// fingerprint of the settings that define the run; resuming with a different fingerprint is an error.
void save_checkpoint(const std::string& path, const std::string& fingerprint, const CheckpointState& state,
                     const std::map<std::string, torch::nn::Module*>& modules, torch::optim::Optimizer& opt);
CheckpointState load_checkpoint(const std::string& path, const std::string& fingerprint,
                                 const std::map<std::string, torch::nn::Module*>& modules,
                                 torch::optim::Optimizer& opt);

// Runs steps [start, settings.steps) calling `step_fn(step) -> loss`, printing progress with the mean
// loss, seconds per step and ETA every log_every steps, and calling `checkpoint_fn(step_done, seconds)`
// every checkpoint_every steps, at a stop_after interruption and at the end. Returns the final state.
CheckpointState training_loop(const TrainSettings& settings, CheckpointState start,
                              const std::function<double(int64_t)>& step_fn,
                              const std::function<void(const CheckpointState&)>& checkpoint_fn);

}  // namespace psbench::nn
