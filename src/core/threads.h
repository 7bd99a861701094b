#pragma once
// Intra-op threads of psbench's computations (issue 13; docs/PERFORMANCE.md, 6). at::set_num_threads sets
// OpenMP's (and MKL's) threads but not OpenBLAS's own pthread pool, which Debian's CPU LibTorch calls for
// every convolution (slow_conv2d -> sgemm). Left at its default (one worker per core) that pool ran beside
// psbench's threads: at one thread its worker spun in sched_yield for a fifth of a batch-1 chain's
// samples, and with other processes on the cores one forward+backward of the shipped consistency model
// took 163 ms instead of 15 ms; at two LibTorch threads and batch 1 the two pools together made a call
// 3-4x slower than one thread (with OpenBLAS on one thread: 0.95-1.4x). The BLAS thread count also changed
// results in the 7th digit, so results at --threads 1 depended on the machine's core count. psbench
// therefore runs OpenBLAS on one thread and parallelises with LibTorch's intra-op threads only, unless the
// user set OPENBLAS_NUM_THREADS, which is then left alone and recorded. Header-only: OpenBLAS is found at
// run time (dlsym), so a LibTorch on MKL or on reference BLAS needs nothing.
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace psbench {
namespace threads_detail {

template <class F>
F blas_symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

inline const char* user_blas_threads() { return std::getenv("OPENBLAS_NUM_THREADS"); }

}  // namespace threads_detail

// Sets LibTorch's intra-op threads to n and, unless OPENBLAS_NUM_THREADS is set, OpenBLAS to one thread.
inline void set_compute_threads(int n) {
  at::set_num_threads(n);
  if (threads_detail::user_blas_threads()) return;
  if (auto set = threads_detail::blas_symbol<void (*)(int)>("openblas_set_num_threads")) set(1);
}

// The BLAS threads OpenBLAS uses now, or -1 when the process has no OpenBLAS.
inline int blas_threads() {
  auto get = threads_detail::blas_symbol<int (*)()>("openblas_get_num_threads");
  return get ? get() : -1;
}

// For provenance: which BLAS library and its threads, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... (pthreads);
// 1 thread" or "... ; OPENBLAS_NUM_THREADS=2 (user)".
inline std::string blas_settings() {
  auto config = threads_detail::blas_symbol<char* (*)()>("openblas_get_config");
  if (!config) return "no OpenBLAS in the process (LibTorch's own threads only)";
  std::string s = config();
  if (auto parallel = threads_detail::blas_symbol<int (*)()>("openblas_get_parallel")) {
    const int p = parallel();
    s += p == 0 ? " (sequential)" : p == 1 ? " (pthreads)" : " (OpenMP)";
  }
  if (const char* user = threads_detail::user_blas_threads())
    return s + "; OPENBLAS_NUM_THREADS=" + user + " (user)";
  return s + "; 1 thread (psbench parallelises with LibTorch's intra-op threads)";
}

}  // namespace psbench
