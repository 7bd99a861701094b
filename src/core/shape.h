#pragma once
// The shape of one data item or measurement ([C, H, W], [d], ...), without the batch dimension. In
// core because datasets, operators and priors all speak it and none of them should include another
// for it.
#include <cstdint>
#include <string>
#include <vector>

namespace psbench {

using Shape = std::vector<int64_t>;

// "[1x28x28]", for messages. Inline: a translation unit of its own costs more build time (the
// precompiled header) than this function.
inline std::string shape_string(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace psbench
