#pragma once
// `psbench train KIND ...`: each trainable model registers a trainer (one file per model), so the
// classifier, the denoiser and the consistency model do not share a central list.
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace psbench {

struct Trainer {
  std::string kind;     // "classifier", "denoiser", ...
  std::string summary;  // one line for `psbench train --help`
  std::function<int(const std::vector<std::string>& args)> main;
};

std::map<std::string, Trainer>& trainer_registry();

struct TrainerRegistrar {
  explicit TrainerRegistrar(Trainer t) { trainer_registry()[t.kind] = std::move(t); }
};

}  // namespace psbench
