#include "priors/prior.h"

#include <stdexcept>

namespace psbench {

at::Tensor Prior::sample(int64_t, at::Generator&) const {
  throw std::logic_error("prior '" + name() + "' cannot be sampled exactly");
}

}  // namespace psbench
