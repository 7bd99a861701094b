// psbench's glibc malloc settings (src/core/allocator.h) are in effect in every program that links the
// core library: a 24 MiB block, which glibc's default (dynamic) mmap threshold would serve by mmap, comes
// from the heap.
#include <catch2/catch.hpp>

#include <malloc.h>

#include <cstdlib>

#include "core/allocator.h"

TEST_CASE("The malloc settings are applied at load time and reported", "[allocator]") {
  if (std::getenv("GLIBC_TUNABLES") || std::getenv("PSBENCH_MALLOC")) {
    CHECK(psbench::malloc_settings().find("mmap_threshold") == std::string::npos);
    return;  // the user's choice wins; nothing else to check here
  }
  CHECK(psbench::malloc_settings() == "mmap_threshold=33554432,trim_threshold=268435456");
  const auto before = mallinfo2().hblks;
  void* p = std::malloc(24 << 20);
  REQUIRE(p != nullptr);
  const auto during = mallinfo2().hblks;
  std::free(p);
  CHECK(during == before);  // not an mmapped chunk
}
