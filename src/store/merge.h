#pragma once
// Combining results files: the shards of one experiment (psbench run --shard i/N) into one file.
#include <string>
#include <vector>

namespace psbench {

struct MergeSummary {
  size_t cells = 0;       // distinct cells in the merged file
  size_t duplicates = 0;  // cells present in more than one input, with equal results
  std::string experiment_hash;
  std::string experiment_cells;  // the experiment's cell count, as the inputs record it
};

// Writes every cell of `inputs` to `out`. All inputs must carry one experiment_hash (the same experiment
// with the same configuration); a cell in several inputs must have equal status, configuration,
// measurements and metrics (timings may differ) and is written once. `out` is written to a temporary file
// next to it and renamed into place, so an interrupted merge leaves no partial `out`; `out` may be one of
// the inputs, and otherwise must not exist. Throws ConfigError naming the file and cell at fault.
MergeSummary merge_results(const std::string& out, const std::vector<std::string>& inputs);

// An exclusive lock on "<results>.lock" (flock), held for the object's life: a second process that
// wants to write the same results file is refused with a message naming the first one's pid, instead of
// interleaving writes. The lock file stays behind (removing it would race with a waiting process); a
// stale one from a killed process is harmless, since the kernel drops the lock with the process.
class WriterLock {
 public:
  explicit WriterLock(const std::string& results_path);
  ~WriterLock();
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  int fd_ = -1;
  std::string created_;  // the lock file, when this lock created it
};

}  // namespace psbench
