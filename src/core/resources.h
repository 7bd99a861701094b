#pragma once
// Peak resident memory per cell (issue 13). Linux keeps the process's high-water mark of resident memory
// (VmHWM in /proc/self/status) and resets it to the current resident size when "5" is written to
// /proc/self/clear_refs (Linux >= 4.0), so resetting at the start of a cell and reading at its end gives
// the cell's own peak (resident memory of the whole process: the loaded models and libraries included).
// The reset starts from the current resident size, which includes heap memory earlier cells freed but
// malloc kept (psbench raises M_TRIM_THRESHOLD to 256 MiB, allocator.cpp): without giving it back first,
// a small cell after a large one reports the large one's peak. Header-only: two small functions.
#include <malloc.h>
#ifdef PSBENCH_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <cstdint>
#include <fstream>
#include <string>

namespace psbench {

// Resets the high-water mark; false where the kernel does not support it (the peak then covers the
// process since it started and is not recorded per cell).
inline bool reset_peak_rss() {
  malloc_trim(0);  // return freed heap pages to the kernel so they leave the resident size
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// Peak device memory per cell on CUDA: LibTorch's caching allocator keeps per-device statistics of the
// bytes it hands out; the cell resets their peak at its start and reads it at its end. Compiled only
// against a CUDA LibTorch (PSBENCH_WITH_CUDA, set by CMake when Torch has the c10_cuda target); elsewhere
// there is no device memory to report and the functions say so.
#ifdef PSBENCH_WITH_CUDA
inline void reset_peak_device_memory() {
  for (int d = 0; d < static_cast<int>(c10::cuda::device_count()); ++d)
    c10::cuda::CUDACachingAllocator::resetPeakStats(d);
}
// Sum over devices of the peak allocated bytes since the reset.
inline int64_t peak_device_memory_bytes() {
  namespace alloc = c10::cuda::CUDACachingAllocator;
  int64_t total = 0;
  for (int d = 0; d < static_cast<int>(c10::cuda::device_count()); ++d)
    total += alloc::getDeviceStats(d).allocated_bytes[static_cast<size_t>(alloc::StatType::AGGREGATE)].peak;
  return total;
}
#else
inline void reset_peak_device_memory() {}
inline int64_t peak_device_memory_bytes() { return -1; }
#endif

// VmHWM in bytes, or -1 where /proc/self/status has none.
inline int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   1234 kB"
  return -1;
}

}  // namespace psbench
