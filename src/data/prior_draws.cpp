// The "prior" dataset: x* ~ the analytic prior itself (Gaussian mixtures), so that the exact
// posterior is the posterior of the data-generating process.
#include "data/dataset.h"

namespace psbench {
namespace {

class PriorDraws : public Dataset {
 public:
  bool uses_prior() const override { return true; }
  Shape shape(const DrawSource& prior) const override { return prior.data_shape(); }
  at::Tensor ground_truth(int64_t, const DrawSource& prior, at::Generator& gen) const override {
    if (!prior.can_sample())
      throw ConfigError("dataset prior: prior '" + prior.name() +
                        "' cannot be sampled exactly; choose an image dataset");
    return prior.sample(1, gen)[0];
  }
};

DatasetRegistrar reg_prior({"prior", "ground truth x* drawn exactly from the (analytic) prior", {},
                            [](const Options&) { return std::make_unique<PriorDraws>(); }});

}  // namespace
}  // namespace psbench
