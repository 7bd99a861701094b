#pragma once
// Ground-truth sources. The measurement index selects x* deterministically. A dataset sees the prior
// it is paired with only as a DrawSource (shape and exact draws).
#include <ATen/ATen.h>

#include "core/options.h"
#include "core/registry.h"
#include "core/shape.h"
#include "data/draw_source.h"

namespace psbench {

class Dataset {
 public:
  virtual ~Dataset() = default;
  // True when x* is drawn from the prior itself (then the prior is part of the measurement key).
  virtual bool uses_prior() const = 0;
  virtual Shape shape(const DrawSource& prior) const = 0;
  // x* for measurement `index`, [*shape]; `gen` is keyed on the measurement only.
  virtual at::Tensor ground_truth(int64_t index, const DrawSource& prior, at::Generator& gen) const = 0;
  // Class label of x* for measurement `index` (classifier-accuracy metrics); -1 when there is none.
  virtual bool has_labels() const { return false; }
  virtual int64_t label(int64_t index) const { return -1; }
};

using DatasetRegistry = Registry<Dataset>;
using DatasetRegistrar = Registrar<Dataset>;

}  // namespace psbench
