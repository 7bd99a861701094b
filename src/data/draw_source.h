#pragma once
// What a dataset may ask of the model the runner pairs it with: its data shape and exact draws (the
// `prior` dataset takes x* from an analytic prior). Defined here, below the priors, and implemented by
// Prior, so that datasets never include priors/ (the priors build on data, e.g. PPCA fitted to
// Fashion-MNIST).
#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

#include "core/shape.h"

namespace psbench {

class DrawSource {
 public:
  virtual ~DrawSource() = default;
  virtual std::string name() const = 0;
  virtual Shape data_shape() const = 0;
  // Exact draws (analytic priors), used as ground truth by the "prior" dataset.
  virtual bool can_sample() const { return false; }
  virtual at::Tensor sample(int64_t n, at::Generator& gen) const {  // [n, *data_shape]
    throw std::logic_error("prior '" + name() + "' cannot be sampled exactly");
  }
};

}  // namespace psbench
