// psbench train classifier: the Fashion-MNIST feature classifier behind the image metrics
// (nn/classifier.h). Seeded (weights initialisation and batch order), Adam with cosine decay, progress
// with loss and ETA; writes the weights and updates their section of the model manifest.
#include <ATen/Parallel.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "cli/train.h"
#include "core/errors.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "core/threads.h"
#include "data/fashion_mnist.h"
#include "nn/classifier.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

double accuracy(FmnistCnn& model, const FashionMnistSplit& split, int64_t batch) {
  torch::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < split.size(); i += batch) {
    const int64_t n = std::min(batch, split.size() - i);
    auto x = fashion_mnist_to_float(split.images.narrow(0, i, n)).unsqueeze(1);
    correct += model->forward(x).argmax(1).eq(split.labels.narrow(0, i, n)).sum().item<int64_t>();
  }
  model->train();
  return static_cast<double>(correct) / static_cast<double>(split.size());
}

void update_manifest(const std::string& manifest, const std::string& file, const YAML::Node& entry) {
  YAML::Node root;
  if (std::filesystem::exists(manifest)) {
    try { root = YAML::LoadFile(manifest); } catch (const YAML::Exception& e) {
      throw ConfigError(manifest + ": not valid YAML (" + e.msg + "); not updated");
    }
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw ConfigError(manifest + ": expected a map of model file -> entry; not updated");
  root[file] = entry;
  YAML::Emitter e;
  e << root;
  std::ofstream out(manifest);
  out << "# Models shipped with psbench: one section per file under data/models/ (see README, Shipped models).\n"
      << e.c_str() << "\n";
  if (!out) throw std::runtime_error(manifest + ": cannot write");
}

int train_classifier(const std::vector<std::string>& args) {
  po::options_description desc("psbench train classifier [options]");
  std::string out, manifest, root;
  int64_t epochs = 10, batch = 128, seed = 0, threads = 1, log_every = 50;
  double lr = 2e-3;
  desc.add_options()("help,h", "show this help")(
      "out,o", po::value(&out)->default_value(std::string(PSBENCH_SOURCE_DIR) + "/data/models/fmnist_cnn.pt"),
      "weights file to write")(
      "manifest", po::value(&manifest),
      "model manifest to update (default: manifest.yaml next to --out; 'none' to skip)")(
      "root", po::value(&root)->default_value(kFashionMnistDefaultRoot), "Fashion-MNIST directory")(
      "epochs", po::value(&epochs)->default_value(epochs), "passes over the 60000 training images")(
      "batch-size", po::value(&batch)->default_value(batch), "images per Adam step")(
      "lr", po::value(&lr)->default_value(lr), "peak Adam learning rate (cosine decay to 0)")(
      "seed", po::value(&seed)->default_value(seed), "initialisation and batch-order seed")(
      "threads,t", po::value(&threads)->default_value(threads), "intra-op threads")(
      "log-every", po::value(&log_every)->default_value(log_every), "steps between progress lines");
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (epochs < 1 || batch < 1 || threads < 1 || log_every < 1 || seed < 0)
    throw UsageError("train classifier: --epochs, --batch-size, --threads and --log-every must be >= 1, --seed >= 0");
  if (!(lr > 0)) throw UsageError("train classifier: --lr must be > 0");
  if (manifest.empty()) manifest = (std::filesystem::path(out).parent_path() / "manifest.yaml").string();
  set_compute_threads(static_cast<int>(threads));

  auto train = load_fashion_mnist(root, "train");
  auto test = load_fashion_mnist(root, "test");
  torch::manual_seed(static_cast<uint64_t>(seed));  // weight initialisation
  FmnistCnn model;
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(lr));
  auto order_gen = make_generator(derive_seed({static_cast<uint64_t>(seed), hash_string("classifier batch order")}));
  const int64_t n = train->size(), steps_per_epoch = n / batch, total = epochs * steps_per_epoch;
  std::cerr << "train classifier: " << parameter_count(*model) << " parameters, " << epochs << " epochs x "
            << steps_per_epoch << " steps of " << batch << " images, " << threads << " thread(s)" << std::endl;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  int64_t step = 0;
  double running = 0;
  for (int64_t ep = 0; ep < epochs; ++ep) {
    auto perm = at::randperm(n, order_gen, at::TensorOptions().dtype(at::kLong));
    for (int64_t b = 0; b < steps_per_epoch; ++b, ++step) {
      auto idx = perm.narrow(0, b * batch, batch);
      auto x = fashion_mnist_to_float(train->images.index_select(0, idx)).unsqueeze(1);
      auto y = train->labels.index_select(0, idx);
      const double cur = 0.5 * lr * (1.0 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total)));
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(cur);
      opt.zero_grad();
      auto loss = torch::cross_entropy_loss(model->forward(x), y);
      loss.backward();
      opt.step();
      running = step == 0 ? loss.item<double>() : 0.98 * running + 0.02 * loss.item<double>();
      if ((step + 1) % log_every == 0 || step + 1 == total) {
        const double t = elapsed(), eta = t / static_cast<double>(step + 1) * static_cast<double>(total - step - 1);
        std::fprintf(stderr, "step %lld/%lld  epoch %lld  loss %.4f  lr %.2e  %.0f s elapsed, ETA %.0f s\n",
                     static_cast<long long>(step + 1), static_cast<long long>(total), static_cast<long long>(ep + 1),
                     running, cur, t, eta);
      }
    }
    std::fprintf(stderr, "epoch %lld: test accuracy %.4f\n", static_cast<long long>(ep + 1),
                 accuracy(model, *test, 1000));
  }
  const double wall = elapsed();
  const double test_acc = accuracy(model, *test, 1000), train_acc = accuracy(model, *train, 1000);
  model->eval();
  if (auto parent = std::filesystem::path(out).parent_path(); !parent.empty()) std::filesystem::create_directories(parent);
  const std::string tmp = out + ".tmp";
  torch::save(model, tmp);
  std::filesystem::rename(tmp, out);
  const std::string sha = sha256_file(out);

  YAML::Node e;
  e["sha256"] = sha;
  e["kind"] = "Fashion-MNIST feature classifier (fmnist_cnn), torch::save archive of nn/classifier.h";
  e["architecture"] = FmnistCnnImpl::architecture();
  e["parameters"] = parameter_count(*model);
  std::string cmd = "psbench train classifier";
  for (const auto& a : args) cmd += " " + a;
  e["training_command"] = cmd;
  e["training"] = "Adam, peak lr " + std::to_string(lr) + " with cosine decay, batch " + std::to_string(batch) +
                  ", seed " + std::to_string(seed) + ", " + std::to_string(threads) + " thread(s), no augmentation";
  e["steps"] = total;
  e["epochs"] = epochs;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", wall);
  e["wall_time_seconds"] = std::string(buf);
  std::snprintf(buf, sizeof buf, "%.4f", test_acc);
  e["test_accuracy"] = std::string(buf);
  std::snprintf(buf, sizeof buf, "%.4f", train_acc);
  e["train_accuracy"] = std::string(buf);
  if (manifest != "none") update_manifest(manifest, std::filesystem::path(out).filename().string(), e);
  std::cout << "train classifier: test accuracy " << test_acc << ", train accuracy " << train_acc << ", " << wall
            << " s; wrote " << out << " (sha256 " << sha << ")"
            << (manifest != "none" ? ", manifest " + manifest : std::string()) << "\n";
  return 0;
}

const TrainerRegistrar reg_train_classifier({"classifier",
                            "Fashion-MNIST feature classifier for the image metrics (data/models/fmnist_cnn.pt)",
                            train_classifier});

}  // namespace
}  // namespace psbench
