#pragma once
// glibc malloc settings for psbench's loops (issue 13; docs/PERFORMANCE.md). Tensors of a few hundred
// kilobytes are allocated and freed every step; under glibc's default dynamic mmap threshold many of them
// are served by mmap/munmap, and freed top-of-heap memory is trimmed back to the kernel, so every step
// pays fresh page faults. psbench raises the mmap threshold to 32 MiB and the trim threshold to 256 MiB at
// load time (a static initialiser in libpsbench_core), unless the user chose malloc settings through
// GLIBC_TUNABLES or asked for glibc's defaults with PSBENCH_MALLOC=default.
#include <string>

namespace psbench {

// What is in effect, for provenance: "mmap_threshold=33554432,trim_threshold=268435456", "glibc default
// (PSBENCH_MALLOC=default)" or "GLIBC_TUNABLES=...".
const std::string& malloc_settings();

}  // namespace psbench
