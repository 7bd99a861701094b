#pragma once
// One comparison for the runner tests: two runs of the same cells (sharded, resumed, killed) hold the same
// results. Timings and memory are measurements of the machine, not results.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "store/result_store.h"
#include "store/schema.h"

namespace psbench::testing {

// The same cells; per cell the same cell index, status and set of arrays, and every array but time/ and
// resources/ equal bit for bit.
inline void check_same_results(const std::vector<CellRecord>& a, const std::vector<CellRecord>& b) {
  std::map<std::string, const CellRecord*> by_key;
  for (const auto& c : b) by_key[c.key] = &c;
  REQUIRE(a.size() == b.size());
  for (const auto& c : a) {
    INFO("cell " << c.key);
    REQUIRE(by_key.count(c.key));
    const auto& other = *by_key.at(c.key);
    CHECK(c.attr(schema::kCellIndex) == other.attr(schema::kCellIndex));
    CHECK(c.attr(schema::kStatus) == other.attr(schema::kStatus));
    CHECK(c.arrays.size() == other.arrays.size());  // with every name of c found in other: the same arrays
    for (const auto& [name, arr] : c.arrays) {
      INFO(name);
      REQUIRE(other.arrays.count(name));
      if (name.rfind(schema::kTimeGroup, 0) == 0 || name.rfind(schema::kResourcesGroup, 0) == 0) continue;
      CHECK(at::equal(arr, other.arrays.at(name)));
    }
  }
}

}  // namespace psbench::testing
