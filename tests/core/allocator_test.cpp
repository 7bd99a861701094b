// psbench's glibc malloc settings (src/core/allocator.h) are in effect in every program that links the
// core library: a 24 MiB block, which glibc's default (dynamic) mmap threshold would serve by mmap, comes
// from the heap.
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>

#include "core/allocator.h"
#include "core/threads.h"

TEST_CASE("The malloc settings are applied at load time and reported", "[allocator]") {
  if (std::getenv("GLIBC_TUNABLES") || std::getenv("PSBENCH_MALLOC")) {
    CHECK(psbench::malloc_settings().find("mmap_threshold") == std::string::npos);
    return;  // the user's choice wins; nothing else to check here
  }
#ifdef __SANITIZE_ADDRESS__
  // AddressSanitizer (make sanitize) replaces malloc: mallopt has nothing to tune, and psbench says so.
  CHECK(psbench::malloc_settings() == "glibc default (mallopt refused)");
  return;
#endif
  CHECK(psbench::malloc_settings() == "mmap_threshold=33554432,trim_threshold=268435456");
  const auto before = mallinfo2().hblks;
  void* p = std::malloc(24 << 20);
  REQUIRE(p != nullptr);
  const auto during = mallinfo2().hblks;
  std::free(p);
  CHECK(during == before);  // not an mmapped chunk
}

// OpenBLAS keeps its own thread pool beside LibTorch's (src/core/threads.h): psbench keeps it on one
// thread whatever LibTorch's intra-op threads, and leaves it alone when the user set OPENBLAS_NUM_THREADS.
TEST_CASE("OpenBLAS runs on one thread at every thread count psbench sets unless OPENBLAS_NUM_THREADS is set",
          "[threads]") {
  if (psbench::blas_threads() < 0) {
    CHECK(psbench::blas_settings().find("no OpenBLAS") == 0);
    return;  // LibTorch on another BLAS: nothing else to set
  }
  if (const char* user = std::getenv("OPENBLAS_NUM_THREADS")) {
    CHECK(psbench::blas_settings().find(std::string("OPENBLAS_NUM_THREADS=") + user + " (user)") != std::string::npos);
    return;  // the user's choice wins
  }
  CHECK(psbench::blas_settings().find("OpenBLAS") == 0);
  CHECK(psbench::blas_settings().find("; 1 thread") != std::string::npos);
  // OpenBLAS's own default is one thread per core; start from two whatever this machine has.
  auto openblas_set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  REQUIRE(openblas_set != nullptr);
  for (int n : {2, 1, 3}) {
    openblas_set(2);
    REQUIRE(psbench::blas_threads() == 2);
    psbench::set_compute_threads(n);
    CHECK(at::get_num_threads() == n);
    CHECK(psbench::blas_threads() == 1);
  }
  ::setenv("OPENBLAS_NUM_THREADS", "2", 1);
  openblas_set(2);
  psbench::set_compute_threads(3);
  CHECK(at::get_num_threads() == 3);
  CHECK(psbench::blas_threads() == 2);  // left as the user had it
  CHECK(psbench::blas_settings().find("OPENBLAS_NUM_THREADS=2 (user)") != std::string::npos);
  ::unsetenv("OPENBLAS_NUM_THREADS");
  psbench::set_compute_threads(1);
}
