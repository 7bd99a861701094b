// psbench fd: Fréchet distance and KID between two image sets on a feature network's features (default
// fmnist_cnn): e.g. generated images against the Fashion-MNIST test split.
#include <ATen/Parallel.h>

#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "cli/options_parse.h"
#include "core/errors.h"
#include "core/threads.h"
#include "data/fashion_mnist.h"
#include "metrics/features.h"
#include "metrics/fmnist_cnn.h"
#include "store/result_store.h"

namespace psbench {
namespace {
namespace po = boost::program_options;

// "fashion_mnist:SPLIT[:N]" or "FILE.h5[:DATASET]" (default dataset "images") -> [N, C, H, W] in [-1, 1].
at::Tensor load_images(const std::string& source, const std::string& root, const std::string& what) {
  if (source.rfind("fashion_mnist:", 0) == 0) {
    auto rest = source.substr(14);
    auto colon = rest.find(':');
    const std::string split = rest.substr(0, colon);
    auto data = load_fashion_mnist(root, split);
    int64_t n = data->size();
    if (colon != std::string::npos) {
      try { n = std::stoll(rest.substr(colon + 1)); } catch (...) { n = -1; }
      if (n < 1 || n > data->size())
        throw UsageError(what + ": '" + source + "': N must be in 1.." + std::to_string(data->size()));
    }
    return fashion_mnist_to_float(data->images.narrow(0, 0, n)).unsqueeze(1);
  }
  std::string path = source, dataset = "images";
  if (auto colon = source.rfind(':'); colon != std::string::npos && source.find(".h5:") != std::string::npos) {
    path = source.substr(0, colon);
    dataset = source.substr(colon + 1);
  }
  at::Tensor t;
  try {
    t = read_hdf5_dataset(path, dataset);
  } catch (const std::exception& e) {
    throw ConfigError(what + ": " + e.what());
  }
  if (t.dim() == 3) t = t.unsqueeze(1);
  if (t.dim() != 4) throw ConfigError(what + ": " + source + ": expected images [N, C, H, W] or [N, H, W]");
  t = t.to(at::kFloat);
  if (!at::isfinite(t).all().item<bool>()) throw ConfigError(what + ": " + source + ": non-finite pixels");
  return t;
}

int cmd_fd(const std::vector<std::string>& args) {
  po::options_description desc("psbench fd --images SOURCE [--reference SOURCE] [options]");
  std::string images, reference, network_path, root;
  int64_t subsets = 100, subset_size = 1000, seed = 0;
  int threads = 1;
  desc.add_options()("help,h", "show this help")(
      "images", po::value(&images),
      "image set: FILE.h5[:DATASET] (default dataset 'images', [N,1,28,28] or [N,28,28] in [-1,1]) or "
      "fashion_mnist:SPLIT[:N] (the first N images of train or test)")(
      "reference", po::value(&reference)->default_value("fashion_mnist:test"), "reference set, same forms")(
      "network-path", po::value(&network_path), "fmnist_cnn weights (default data/models/fmnist_cnn.pt)")(
      "root", po::value(&root)->default_value(kFashionMnistDefaultRoot), "Fashion-MNIST directory")(
      "subsets", po::value(&subsets)->default_value(subsets), "KID subsets")(
      "subset-size", po::value(&subset_size)->default_value(subset_size), "KID subset size")(
      "seed", po::value(&seed)->default_value(seed), "KID subset seed")(
      "threads,t", po::value(&threads)->default_value(1), "intra-op threads");
  auto vm = parse_command_line(args, desc, nullptr);
  if (vm.count("help")) { std::cout << desc << "\n"; return 0; }
  if (images.empty()) throw UsageError("fd: missing --images");
  if (subsets < 1 || subset_size < 2 || seed < 0 || threads < 1)
    throw UsageError("fd: --subsets >= 1, --subset-size >= 2, --seed >= 0 and --threads >= 1 are required");
  set_compute_threads(threads);
  FeatureNetworkSpec spec;
  spec.path = network_path;
  auto net = load_feature_network(spec);
  auto a = load_images(images, root, "--images");
  auto b = load_images(reference, root, "--reference");
  for (const auto* t : {&a, &b})
    if (auto why = net->unsupported(t->sizes().slice(1).vec()); !why.empty()) throw ConfigError("fd: " + why);
  auto fa = net->features(a);
  auto fb = reference == "fashion_mnist:test" && root == kFashionMnistDefaultRoot ? fashion_mnist_test_features(*net)
                                                                                   : net->features(b);
  const double fd = frechet_distance(fa, fb);
  const auto k = kid(fa, fb, subsets, subset_size, static_cast<uint64_t>(seed));
  std::printf("network: %s (%s, sha256 %s)\n", net->name().c_str(), net->path().c_str(), net->sha256().c_str());
  std::printf("images: %s (%lld)\nreference: %s (%lld)\n", images.c_str(), static_cast<long long>(fa.size(0)),
              reference.c_str(), static_cast<long long>(fb.size(0)));
  std::printf("fd_%s: %.6g\nkid_%s: %.6g ± %.2g (std over %lld subsets of %lld)\n", net->name().c_str(), fd,
              net->name().c_str(), k.mean, k.std, static_cast<long long>(k.subsets), static_cast<long long>(k.subset_size));
  if (auto w = frechet_sample_warning(fa.size(0), fb.size(0), fa.size(1)); !w.empty()) std::printf("warning: %s\n", w.c_str());
  return 0;
}

CommandRegistrar reg_fd_command({"fd", "fd --images FILE.h5[:DATASET] [--reference fashion_mnist:test]",
                      "Fréchet distance and KID of an image set against a reference on fmnist_cnn features", cmd_fd});

}  // namespace
}  // namespace psbench
