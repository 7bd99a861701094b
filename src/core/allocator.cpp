#include "core/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace psbench {
namespace {

constexpr int kMmapThreshold = 32 << 20;   // bytes: allocations below this come from the heap
constexpr int kTrimThreshold = 256 << 20;  // bytes of free top-of-heap memory kept before trimming

std::string apply() {
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t && std::strstr(t, "glibc.malloc"))
    return std::string("GLIBC_TUNABLES=") + t;
  if (const char* m = std::getenv("PSBENCH_MALLOC"); m && std::strcmp(m, "default") == 0)
    return "glibc default (PSBENCH_MALLOC=default)";
  // mallopt returns 1 on success; setting M_MMAP_THRESHOLD also turns off glibc's dynamic adjustment.
  if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1 || mallopt(M_TRIM_THRESHOLD, kTrimThreshold) != 1)
    return "glibc default (mallopt refused)";
  return "mmap_threshold=" + std::to_string(kMmapThreshold) + ",trim_threshold=" + std::to_string(kTrimThreshold);
}

// Applied when the library loads, before any tensor is allocated.
const std::string kApplied = apply();

}  // namespace

const std::string& malloc_settings() { return kApplied; }

}  // namespace psbench
