#include "store/merge.h"

#include <fcntl.h>
#include <cerrno>
#include <cstring>
#include <exception>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "core/errors.h"
#include "store/result_store.h"
#include "store/schema.h"

namespace psbench {
namespace {

// The arrays that are results (not timings): they must agree where two inputs hold the same cell.
bool is_result_array(const std::string& name) {
  return name.rfind(schema::kMetricsGroup, 0) == 0 || name == schema::kXTrue || name == schema::kY;
}

// The first difference between two records of one cell, or "" when their results agree.
std::string first_difference(const CellRecord& a, const CellRecord& b) {
  for (const char* k : {schema::kCanonical, schema::kStatus}) {
    const bool ha = a.has_attr(k), hb = b.has_attr(k);
    if (ha != hb || (ha && a.attr(k) != b.attr(k))) return std::string("attribute ") + k;
  }
  for (const auto& [name, t] : a.arrays) {
    if (!is_result_array(name)) continue;
    auto it = b.arrays.find(name);
    if (it == b.arrays.end()) return name + " (missing in one)";
    const auto& u = it->second;
    if (t.scalar_type() != u.scalar_type() || !t.sizes().equals(u.sizes()) || !t.equal(u)) return name;
  }
  for (const auto& [name, t] : b.arrays)
    if (is_result_array(name) && !a.arrays.count(name)) return name + " (missing in one)";
  return "";
}

}  // namespace

MergeSummary merge_results(const std::string& out, const std::vector<std::string>& inputs) {
  if (inputs.empty()) throw ConfigError("merge: no input files");
  namespace fs = std::filesystem;
  bool out_is_input = false;
  for (const auto& in : inputs) {
    if (!fs::exists(in)) throw ConfigError(in + ": no such results file");
    out_is_input = out_is_input || (fs::exists(out) && fs::equivalent(in, out));
  }
  if (fs::exists(out) && !out_is_input)
    throw ConfigError(out + ": exists and is not one of the inputs; merge does not overwrite results (delete it, or "
                            "list it as an input to add the shards to it)");
  WriterLock lock(out);  // no `run` may be writing the merged file meanwhile

  MergeSummary sum;
  std::map<std::string, std::string> attrs;  // file attributes of the first input, less its shard
  std::map<std::string, std::pair<CellRecord, std::string>> cells;  // key -> (record, file it came from)
  std::string merged_from;
  for (const auto& in : inputs) {
    Hdf5Store store(in, "r");
    auto a = store.file_attributes();
    auto h = a.find(schema::kExperimentHash);
    if (h == a.end())
      throw ConfigError(in + ": no " + std::string(schema::kExperimentHash) +
                        " attribute (not written by `psbench run` of this version), so merge cannot check it "
                        "belongs to the same experiment");
    if (sum.experiment_hash.empty()) {
      sum.experiment_hash = h->second;
      attrs = a;
      attrs.erase(schema::kShard);
      if (a.count(schema::kExperimentCells)) sum.experiment_cells = a.at(schema::kExperimentCells);
    } else if (h->second != sum.experiment_hash) {
      throw ConfigError(in + ": experiment_hash " + h->second + " differs from " + inputs.front() + "'s " +
                        sum.experiment_hash + " (" + (a.count(schema::kExperiment) ? a.at(schema::kExperiment) : "?") +
                        " vs " + (attrs.count(schema::kExperiment) ? attrs.at(schema::kExperiment) : "?") +
                        "): shards of different experiments, or of an experiment file changed between shards");
    }
    merged_from += (merged_from.empty() ? "" : " ") + in;
    for (auto& rec : store.read_all()) {
      auto it = cells.find(rec.key);
      if (it == cells.end()) {
        std::string key = rec.key;
        cells.emplace(key, std::make_pair(std::move(rec), in));
        continue;
      }
      const auto diff = first_difference(it->second.first, rec);
      if (!diff.empty())
        throw ConfigError("merge: cell " + rec.key + " is in " + it->second.second + " and " + in +
                          " with different results (" + diff + "); refusing to choose one");
      ++sum.duplicates;
    }
  }
  attrs[schema::kMergedFrom] = merged_from;

  // Written beside `out` and renamed into place: an interrupted merge leaves `out` as it was.
  const std::string tmp = out + ".merging";
  fs::remove(tmp);
  {
    Hdf5Store merged(tmp, "a", attrs);
    for (const auto& [key, rec] : cells) merged.write(rec.first);
  }
  fs::rename(tmp, out);
  sum.cells = cells.size();
  return sum;
}

WriterLock::WriterLock(const std::string& results_path) {
  const std::string path = results_path + ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ >= 0) {
    created_ = path;
  } else if (errno == EEXIST) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (fd_ < 0) throw ConfigError(path + ": cannot open the results file's lock (" + std::strerror(errno) + ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    (void)!::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    fd_ = -1;
    created_.clear();
    std::string who(pid);
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    throw ConfigError(results_path + ": another psbench process" + (who.empty() ? "" : " (pid " + who + ")") +
                      " is writing it (lock " + path + "); wait for it, or write to another file with --out");
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, me.data(), me.size(), 0);
}

WriterLock::~WriterLock() {
  // A command that fails (unwinding: bad input found after the lock was taken) leaves no lock file it created
  // beside the user's files; a finished writer keeps its lock file, as every later writer of that results file
  // locks the same inode.
  if (fd_ >= 0 && !created_.empty() && std::uncaught_exceptions() > 0) ::unlink(created_.c_str());
  if (fd_ >= 0) ::close(fd_);  // closing drops the flock
}

}  // namespace psbench
