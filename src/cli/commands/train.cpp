// psbench train KIND [options]: dispatch to the registered trainers (see cli/train.h), and the
// options every trainer shares (cli/train_options.h).
#include "cli/train.h"

#include <boost/program_options.hpp>

#include <cmath>
#include <iostream>

#include "cli/command.h"
#include "cli/train_options.h"
#include "data/fashion_mnist.h"

namespace psbench {

void add_train_options(boost::program_options::options_description& desc, nn::TrainSettings& s) {
  namespace po = boost::program_options;
  desc.add_options()("out,o", po::value(&s.out), "model file to write (EMA weights)")(
      "checkpoint", po::value(&s.checkpoint), "checkpoint file (default: OUT.ckpt)")(
      "steps", po::value(&s.steps)->default_value(s.steps), "total optimisation steps")(
      "batch", po::value(&s.batch)->default_value(s.batch), "images per step")(
      "lr", po::value(&s.lr)->default_value(s.lr), "Adam learning rate")(
      "warmup", po::value(&s.warmup)->default_value(s.warmup), "linear learning-rate warm-up steps")(
      "ema", po::value(&s.ema)->default_value(s.ema), "EMA decay per step of the saved weights")(
      "seed", po::value(&s.seed)->default_value(s.seed), "seed of initialisation, batches and noise")(
      "threads", po::value(&s.threads)->default_value(s.threads), "intra-op threads")(
      "checkpoint-every", po::value(&s.checkpoint_every)->default_value(s.checkpoint_every),
      "steps between checkpoints (the model file is refreshed too)")(
      "log-every", po::value(&s.log_every)->default_value(s.log_every), "steps between progress lines")(
      "stop-after", po::value(&s.stop_after)->default_value(0),
      "stop with a checkpoint after this many steps of this invocation (0: run to --steps)")(
      "limit", po::value(&s.limit)->default_value(0), "train on the first N training images only (0: all)")(
      "data-root", po::value(&s.data_root)->default_value(kFashionMnistDefaultRoot), "Fashion-MNIST directory")(
      "resume", po::bool_switch(&s.resume), "continue from the checkpoint exactly where it stopped");
}

void validate_train_settings(nn::TrainSettings& s, const std::string& kind, const std::vector<std::string>& args) {
  const std::string p = "train " + kind + ": ";
  if (s.out.empty()) throw UsageError(p + "missing --out FILE");
  if (s.checkpoint.empty()) s.checkpoint = s.out + ".ckpt";
  if (s.steps < 1) throw UsageError(p + "--steps must be >= 1");
  if (s.batch < 1) throw UsageError(p + "--batch must be >= 1");
  if (!(s.lr > 0) || !std::isfinite(s.lr)) throw UsageError(p + "--lr must be a positive number");
  if (s.warmup < 0) throw UsageError(p + "--warmup must be >= 0");
  if (!(s.ema >= 0 && s.ema < 1)) throw UsageError(p + "--ema must be in [0, 1)");
  if (s.seed < 0) throw UsageError(p + "--seed must be >= 0");
  if (s.threads < 1) throw UsageError(p + "--threads must be >= 1");
  if (s.checkpoint_every < 0 || s.log_every < 0 || s.stop_after < 0 || s.limit < 0)
    throw UsageError(p + "--checkpoint-every, --log-every, --stop-after and --limit must be >= 0");
  s.command = "psbench train " + kind;
  for (const auto& a : args) s.command += " " + a;
}


namespace {

int cmd_train(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::ostream& os = args.empty() ? std::cerr : std::cout;
    os << "usage: psbench train KIND [options]   (psbench train KIND --help for its options)\n\nkinds:\n";
    for (const auto& [kind, t] : TrainerRegistry::instance().entries())
      os << "  " << kind << "\n      " << t.description << "\n";
    return args.empty() ? 2 : 0;
  }
  const auto& trainers = TrainerRegistry::instance();
  if (!trainers.has(args[0]))
    throw UsageError("train: unknown model kind '" + args[0] + "' (known: " + trainers.names() + ")");
  return trainers.get(args[0], "trainer").main(std::vector<std::string>(args.begin() + 1, args.end()));
}

const CommandRegistrar reg_train({"train", "train KIND [options]",
                            "train a model psbench ships (classifier, denoiser, consistency...)", cmd_train});

}  // namespace
}  // namespace psbench
