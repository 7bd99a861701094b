#include "core/rng.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/errors.h"

namespace psbench {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_string(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t derive_seed(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x5053424e43480001ULL;  // "PSBNCH" tag
  for (uint64_t p : parts) h = splitmix64(h ^ splitmix64(p));
  return h;
}

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

std::string where(const std::string& file, const std::string& key, const std::string& msg) {
  std::string out = file;
  if (!key.empty()) out += (out.empty() ? "" : ": ") + key;
  return out + ": " + msg;
}

}  // namespace psbench
