#pragma once
// Stored results of one cell: string attributes plus named arrays ("metrics/sliced_wasserstein",
// "nfe/chain_forward_backward", "trace/chain_loss", "x_true", ...). A cell is written completely or
// not at all.
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace psbench {

struct CellRecord {
  std::string key;
  std::map<std::string, std::string> attributes;  // config, status, message, provenance...
  std::map<std::string, at::Tensor> arrays;       // CPU tensors: double, float, int64 or uint8

  const std::string& attr(const std::string& k) const;
  bool has_attr(const std::string& k) const { return attributes.count(k) > 0; }
};

class ResultStore {
 public:
  virtual ~ResultStore() = default;
  virtual void write(const CellRecord& cell) = 0;
  virtual std::set<std::string> complete_keys() const = 0;
  virtual std::vector<CellRecord> read_all() const = 0;
  virtual std::map<std::string, std::string> file_attributes() const = 0;

  // The finished measurements of a cell that is not complete yet, stored one by one as they finish so that
  // a killed run resumes the cell at its first missing measurement (each written atomically). Not cells:
  // complete_keys() and read_all() never see them. drop_measurements() once the complete cell is written.
  virtual void write_measurement(const std::string& key, int64_t m, const CellRecord& part) = 0;
  virtual std::map<int64_t, CellRecord> read_measurements(const std::string& key) const = 0;
  virtual void drop_measurements(const std::string& key) = 0;
};

// HDF5 file: /cells/<key>/... ; partial writes live under /cells/.partial-<key> until a final link
// move, and are discarded when the file is reopened.
class Hdf5Store : public ResultStore {
 public:
  // mode "a": open or create; "r": read-only (missing file is an error).
  Hdf5Store(std::string path, const std::string& mode, std::map<std::string, std::string> file_attrs = {});
  void write(const CellRecord& cell) override;
  std::set<std::string> complete_keys() const override;
  std::vector<CellRecord> read_all() const override;
  std::map<std::string, std::string> file_attributes() const override;
  void write_measurement(const std::string& key, int64_t m, const CellRecord& part) override;
  std::map<int64_t, CellRecord> read_measurements(const std::string& key) const override;
  void drop_measurements(const std::string& key) override;
  const std::string& path() const { return path_; }
  // Where write_measurement keeps a running cell's finished measurements (removed when none are left).
  std::string measurements_file() const;

 private:
  std::string path_;
  bool writable_;
};

// One dataset of any HDF5 file as a CPU tensor (float, double, int64 or uint8), e.g. images written by
// h5py for `psbench fd`. Throws ConfigError naming the file and dataset (a missing or unreadable one).
at::Tensor read_hdf5_dataset(const std::string& path, const std::string& dataset);
// Writes a new HDF5 file (replacing `path`) holding one dataset, plus string attributes on the file.
void write_hdf5_dataset(const std::string& path, const std::string& dataset, const at::Tensor& t,
                        const std::map<std::string, std::string>& attributes = {});

class MemoryStore : public ResultStore {
 public:
  void write(const CellRecord& cell) override { cells_[cell.key] = cell; }
  std::set<std::string> complete_keys() const override;
  std::vector<CellRecord> read_all() const override;
  std::map<std::string, std::string> file_attributes() const override { return {}; }
  void write_measurement(const std::string& key, int64_t m, const CellRecord& part) override {
    measurements_[key][m] = part;
  }
  std::map<int64_t, CellRecord> read_measurements(const std::string& key) const override {
    auto it = measurements_.find(key);
    return it == measurements_.end() ? std::map<int64_t, CellRecord>{} : it->second;
  }
  void drop_measurements(const std::string& key) override { measurements_.erase(key); }

 private:
  std::map<std::string, CellRecord> cells_;
  std::map<std::string, std::map<int64_t, CellRecord>> measurements_;
};

}  // namespace psbench
