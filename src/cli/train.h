#pragma once
// `psbench train KIND ...`: each trainable model registers a trainer command (one file per model under
// cli/commands/, the training itself in nn/), so the classifier, the denoiser and the consistency model
// do not share a central list.
#include <functional>
#include <string>
#include <vector>

#include "core/registry.h"

namespace psbench {

struct Trainer {
  std::string name;         // the KIND: "classifier", "denoiser", ...
  std::string description;  // one line for `psbench train --help`
  std::function<int(const std::vector<std::string>& args)> main;
};

using TrainerRegistry = NamedRegistry<Trainer>;
using TrainerRegistrar = NamedRegistrar<Trainer>;

}  // namespace psbench
