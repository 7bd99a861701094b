// Every array and attribute a run writes is named by store/schema.h, and the status is one of its enum.
#include <catch2/catch.hpp>

#include <cstring>
#include <set>

#include "store/result_store.h"
#include "store/schema.h"
#include "test_util.h"

using namespace psbench;
namespace sc = psbench::schema;

namespace {
bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

TEST_CASE("cell status names round-trip through the enum and unknown ones are refused", "[schema]") {
  for (auto s : {sc::CellStatus::Ok, sc::CellStatus::Diverged, sc::CellStatus::Failed})
    CHECK(sc::parse_status(sc::status_name(s)) == s);
  CHECK(std::string(sc::status_name(sc::CellStatus::Diverged)) == "diverged");
  CHECK_THROWS(sc::parse_status("done"));
  CHECK(sc::measurement_name(7) == "m0007");
}

TEST_CASE("a run writes only names of the results schema", "[schema][runner][cli]") {
  const auto dir = psbench::testing::temp_dir("schema");
  const std::string file = dir + "/tiny.h5";
  REQUIRE(psbench::testing::run_cli("run experiments/tests/tiny.yaml --out " + file, dir + "/run.log") == 0);
  const std::set<std::string> arrays{sc::kXTrue,           sc::kY,
                                     sc::kNfeWarmupForward, sc::kNfeWarmupForwardBackward,
                                     sc::kNfeChainForward,  sc::kNfeChainForwardBackward,
                                     sc::kTimeWarmupSeconds, sc::kTimeSamplingSeconds,
                                     sc::kResourcesScoringSeconds, sc::kResourcesCellSeconds,
                                     sc::kResourcesPeakRssBytes, sc::kChainsDiverged};
  const std::vector<const char*> array_groups{sc::kMetricsGroup, sc::kMetricArraysGroup, sc::kMetricSpreadGroup,
                                              sc::kTraceGroup, sc::kSamplesGroup};
  const std::set<std::string> attributes{sc::kConfig,          sc::kCanonical,   sc::kStatus,
                                         sc::kMessage,         sc::kChains,      sc::kCellIndex,
                                         sc::kMetricsSkipped,  sc::kPsbenchVersion, sc::kGitRevision,
                                         sc::kLibtorchVersion, sc::kThreads,     sc::kDevice,
                                         sc::kBuildType,       sc::kMalloc,      sc::kInteropThreads,
                                         sc::kPlannedNfe,      sc::kBudgetRule,  sc::kBudgetSampler,
                                         sc::kBlas};
  const std::vector<const char*> attribute_prefixes{sc::kPriorPrefix, sc::kMetricDirectionPrefix,
                                                    sc::kMetricLevelPrefix, sc::kMetricProvenancePrefix,
                                                    sc::kWarningPrefix};
  Hdf5Store store(file, "r");
  auto cells = store.read_all();
  REQUIRE(cells.size() == 3);
  std::set<sc::CellStatus> seen;
  for (const auto& c : cells) {
    for (const auto& [k, t] : c.arrays) {
      INFO(c.key << ": array " << k);
      bool known = arrays.count(k) > 0;
      for (const char* g : array_groups) known |= starts_with(k, g);
      CHECK(known);
    }
    for (const auto& [k, v] : c.attributes) {
      INFO(c.key << ": attribute " << k);
      bool known = attributes.count(k) > 0;
      for (const char* p : attribute_prefixes) known |= starts_with(k, p);
      CHECK(known);
    }
    seen.insert(sc::parse_status(c.attr(sc::kStatus)));
    for (const auto& [k, v] : c.attributes)
      if (starts_with(k, sc::kMetricLevelPrefix))
        CHECK((v == sc::kLevelPerSample || v == sc::kLevelPerMeasurement || v == sc::kLevelPerSet));
  }
  // tiny.yaml has a diverging step size next to ok cells.
  CHECK(seen.count(sc::CellStatus::Ok));
  CHECK(seen.count(sc::CellStatus::Diverged));
  for (const auto& [k, v] : store.file_attributes()) {
    INFO("file attribute " << k);
    CHECK((k == sc::kExperiment || k == sc::kExperimentFile || k == sc::kExperimentHash || k == sc::kExperimentCells ||
           k == sc::kResultsSchema || attributes.count(k) > 0));
  }
  CHECK(store.file_attributes().at(sc::kResultsSchema) == sc::kResultsSchemaVersion);
}
