#include "data/draw_source.h"

#include <stdexcept>

namespace psbench {

at::Tensor DrawSource::sample(int64_t, at::Generator&) const {
  throw std::logic_error("prior '" + name() + "' cannot be sampled exactly");
}

}  // namespace psbench
