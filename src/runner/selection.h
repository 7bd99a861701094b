#pragma once
// Which cells of an experiment one `psbench run` executes (README "Sweeps at scale"): `--only FIELD=VALUE`
// filters and `--shard i/N`, a deterministic partition of the cell list for job arrays, whose files
// `psbench merge` combines.
#include <cstdint>
#include <string>
#include <vector>

#include "runner/experiment.h"

namespace psbench {

struct CellSelection {
  // "FIELD=VALUE" items. FIELD: task, dataset, prior, sampler (the component's name), SECTION.OPTION
  // (task.sigma_y, sampler.step_size, prior.steps...), seed, measurements, samples_per_measurement,
  // nfe_budget, or key (the cell key). Items with the same FIELD are alternatives; different FIELDs must
  // all hold. Numbers compare by value (1e-3 selects 0.001).
  std::vector<std::string> only;
  int64_t shard = 1, num_shards = 1;  // shard i of N, 1-based
};

// "i/N" with 1 <= i <= N; throws ConfigError quoting the text otherwise.
void parse_shard(const std::string& text, CellSelection& sel);

// Indices, in experiment order, of the selected cells. Cell j (0-based, in the whole experiment) belongs
// to shard j mod N + 1: shards are taken from the whole list before --only filters, so a cell's shard
// does not depend on the filters. Throws ConfigError for a malformed item, a FIELD no cell has, or
// filters that select no cell.
std::vector<size_t> select_cells(const Experiment& ex, const CellSelection& sel);

// Per cell, in experiment order, "FIELD=VALUE" for every field (as --only names them) whose value differs
// between two cells that have it: what the sweep varies, as `run --dry-run` lists it.
std::vector<std::vector<std::string>> swept_values(const Experiment& ex);

// 16 hex digits over every cell's canonical description, in order: equal for all shards (and filtered
// runs) of one experiment, different once any cell's configuration differs. Stored as the results
// file's experiment_hash attribute; `merge` refuses files whose hashes differ.
std::string experiment_hash(const Experiment& ex);

}  // namespace psbench
