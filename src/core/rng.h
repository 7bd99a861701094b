#pragma once
// Counter-based seeding: every random stream is derived from a tuple of integers
// (experiment seed, cell/measurement key, measurement index, chain index, purpose), so a draw never
// depends on the order in which work is done or on how chains are batched.
#include <ATen/core/Generator.h>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace psbench {

uint64_t splitmix64(uint64_t x);
uint64_t hash_string(const std::string& s);  // FNV-1a 64
uint64_t derive_seed(std::initializer_list<uint64_t> parts);
at::Generator make_generator(uint64_t seed);

// Purposes of random streams, so that two streams derived from the same tuple never coincide.
enum class Stream : uint64_t {
  GroundTruth = 1, Operator = 2, Noise = 3, Chain = 4, Reference = 5, Metric = 6, PriorParams = 7
};

}  // namespace psbench
