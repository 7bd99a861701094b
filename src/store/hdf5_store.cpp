#include <hdf5.h>

#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <filesystem>

#include "core/errors.h"
#include "store/result_store.h"
#include "store/schema.h"

namespace psbench {

namespace {

[[noreturn]] void h5fail(const std::string& what) { throw std::runtime_error("HDF5: " + what); }

// Minimal RAII for hid_t handles.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
    if (id_ < 0) h5fail(what);
  }
  ~Handle() { if (id_ >= 0) close_(id_); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

hid_t string_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type(string_type(), H5Tclose, "string type");
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, "attribute " + name);
  const char* p = value.c_str();
  if (H5Awrite(attr, type, &p) < 0) h5fail("writing attribute " + name);
}

std::string read_attr(hid_t obj, const std::string& name) {
  Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "attribute " + name);
  Handle ftype(H5Aget_type(attr), H5Tclose, "attribute type");
  if (H5Tget_class(ftype) != H5T_STRING) return "";
  if (H5Tis_variable_str(ftype) > 0) {
    Handle type(string_type(), H5Tclose, "string type");
    char* p = nullptr;
    if (H5Aread(attr, type, &p) < 0) h5fail("reading attribute " + name);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  size_t n = H5Tget_size(ftype);
  std::string s(n, '\0');
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  H5Tset_size(type, n);
  if (H5Aread(attr, type, s.data()) < 0) h5fail("reading attribute " + name);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

std::map<std::string, std::string> read_all_attrs(hid_t obj) {
  std::map<std::string, std::string> out;
  H5O_info_t info;
  if (H5Oget_info(obj, &info) < 0) h5fail("object info");
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    char name[512];
    if (H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0) continue;
    out[name] = read_attr(obj, name);
  }
  return out;
}

hid_t native_type(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return H5T_NATIVE_DOUBLE;
    case at::kFloat: return H5T_NATIVE_FLOAT;
    case at::kLong: return H5T_NATIVE_INT64;
    case at::kByte: return H5T_NATIVE_UINT8;
    default: throw std::logic_error("Hdf5Store: unsupported tensor dtype");
  }
}

void write_array(hid_t loc, const std::string& path, const at::Tensor& t) {
  auto c = t.detach().cpu().contiguous();
  std::vector<hsize_t> dims(c.sizes().begin(), c.sizes().end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
               H5Sclose, "dataspace");
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "link property list");
  H5Pset_create_intermediate_group(lcpl, 1);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset property list");
  if (c.numel() > 4096 && !dims.empty()) {
    // Chunked + deflate for large arrays (samples); chunk = one leading slice.
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;
    H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
    H5Pset_deflate(dcpl, 4);
  }
  hid_t type = native_type(c.scalar_type());
  Handle ds(H5Dcreate2(loc, path.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT), H5Dclose, "creating " + path);
  if (c.numel() > 0 && H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data_ptr()) < 0) h5fail("writing " + path);
}

at::Tensor read_array(hid_t ds) {
  Handle space(H5Dget_space(ds), H5Sclose, "dataspace");
  int nd = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(nd, 0)));
  if (nd > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  Handle ftype(H5Dget_type(ds), H5Tclose, "type");
  at::ScalarType st;
  hid_t mem;
  if (H5Tget_class(ftype) == H5T_FLOAT) {
    st = H5Tget_size(ftype) == 4 ? at::kFloat : at::kDouble;
    mem = st == at::kFloat ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
  } else if (H5Tget_class(ftype) == H5T_INTEGER && H5Tget_size(ftype) == 1) {
    st = at::kByte;
    mem = H5T_NATIVE_UINT8;
  } else {
    st = at::kLong;
    mem = H5T_NATIVE_INT64;
  }
  std::vector<int64_t> sizes(dims.begin(), dims.end());
  auto t = at::empty(sizes, at::TensorOptions().dtype(st));
  if (t.numel() > 0 && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0) h5fail("reading dataset");
  return t;
}

struct VisitState {
  std::map<std::string, at::Tensor>* arrays;
  hid_t root;
};

herr_t visit_dataset(hid_t obj, const char* name, const H5O_info_t* info, void* data) {
  if (info->type != H5O_TYPE_DATASET) return 0;
  auto* st = static_cast<VisitState*>(data);
  Handle ds(H5Dopen2(obj, name, H5P_DEFAULT), H5Dclose, std::string("opening ") + name);
  (*st->arrays)[name] = read_array(ds);
  return 0;
}

struct Silence {  // HDF5 prints its own error stacks; psbench reports errors itself.
  H5E_auto2_t func;
  void* data;
  Silence() { H5Eget_auto2(H5E_DEFAULT, &func, &data); H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
  ~Silence() { H5Eset_auto2(H5E_DEFAULT, func, data); }
};

hid_t open_file(const std::string& path, bool writable) {
  Silence quiet;
  if (!writable) {
    if (!file_exists(path)) throw ConfigError(path + ": no such file");
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) throw ConfigError(path + ": not a readable HDF5 file (truncated, or another format)");
    return f;
  }
  if (file_exists(path)) {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) throw ConfigError(path + ": exists but is not a writable HDF5 file");
    return f;
  }
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) throw std::runtime_error(path + ": cannot create HDF5 file");
  return f;
}

// HDF5 does not survive a write that fails half-way (ENOSPC): its metadata cache is left dirty, closing the file
// fails, and the library crashes when it shuts down. So a record is written only when the filesystem holding
// `path` has room for it: twice its payload plus 1 MiB for HDF5's metadata (groups, attributes, chunk index and
// the cache's flushes), checked with statvfs. Otherwise nothing is written and the run stops with exit 2,
// every cell already in the file intact.
void ensure_space(const std::string& path, const CellRecord& rec, const std::string& what) {
  uint64_t payload = 0;
  for (const auto& [k, v] : rec.attributes) payload += k.size() + v.size() + 64;
  for (const auto& [k, t] : rec.arrays) payload += static_cast<uint64_t>(t.numel()) * t.element_size() + k.size() + 512;
  const uint64_t need = 2 * payload + (uint64_t{1} << 20);
  auto dir = std::filesystem::absolute(path).parent_path();
  struct statvfs fs;
  if (::statvfs(dir.c_str(), &fs) != 0) return;  // no answer: let HDF5 try
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free_bytes < need)
    throw ConfigError(path + ": not enough free space on its filesystem to write " + what + " (about " +
                      std::to_string(need / 1024) + " KiB needed with HDF5's overhead, " +
                      std::to_string(free_bytes / 1024) + " KiB free); nothing was written, finished cells are intact");
}

std::vector<std::string> child_names(hid_t group) {
  std::vector<std::string> names;
  H5G_info_t info;
  if (H5Gget_info(group, &info) < 0) h5fail("group info");
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    std::string s(static_cast<size_t>(n), '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), s.size() + 1, H5P_DEFAULT);
    names.push_back(s);
  }
  return names;
}

}  // namespace

const std::string& CellRecord::attr(const std::string& k) const {
  auto it = attributes.find(k);
  if (it == attributes.end()) throw std::runtime_error("cell " + key + " has no attribute '" + k + "'");
  return it->second;
}

namespace {
// Refuses (before anything is written) a file that is not a results file, or one of another layout.
void check_results_file(hid_t f, const std::string& path, bool created) {
  Silence quiet;
  Handle root(H5Gopen2(f, "/", H5P_DEFAULT), H5Gclose, "open /");
  if (H5Aexists(root, schema::kResultsSchema) > 0) {
    const std::string found = read_attr(root, schema::kResultsSchema);
    if (found != schema::kResultsSchemaVersion) {
      const std::string writer = H5Aexists(root, schema::kPsbenchVersion) > 0
                                     ? "psbench " + read_attr(root, schema::kPsbenchVersion)
                                     : "an unknown psbench version";
      throw ConfigError(path + ": results schema '" + found + "' (written by " + writer + "); this psbench (" +
                        PSBENCH_VERSION + ") reads '" + schema::kResultsSchemaVersion +
                        "': read it with the psbench that wrote it");
    }
  }
  if (!created && H5Lexists(f, schema::kCellsGroup, H5P_DEFAULT) <= 0)
    throw ConfigError(path + ": not a psbench results file (no " + schema::kCellsGroup + " group)");
}
}  // namespace

Hdf5Store::Hdf5Store(std::string path, const std::string& mode, std::map<std::string, std::string> file_attrs)
    : path_(std::move(path)), writable_(mode == "a") {
  const bool created = writable_ && !file_exists(path_);
  if (writable_) ensure_space(path_, CellRecord{}, "the results file's header");
  Handle f(open_file(path_, writable_), H5Fclose, "open " + path_);
  check_results_file(f, path_, created);
  if (!writable_) return;
  Silence quiet;
  if (H5Lexists(f, schema::kCellsGroup, H5P_DEFAULT) <= 0) {
    Handle g(H5Gcreate2(f, schema::kCellsGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /cells");
  }
  // Discard leftovers of an interrupted write: they were never linked as complete cells.
  Handle cells(H5Gopen2(f, schema::kCellsGroup, H5P_DEFAULT), H5Gclose, "open /cells");
  for (const auto& n : child_names(cells))
    if (n.rfind(schema::kPartialPrefix, 0) == 0) H5Ldelete(cells, n.c_str(), H5P_DEFAULT);
  Handle root(H5Gopen2(f, "/", H5P_DEFAULT), H5Gclose, "open /");
  write_attr(root, schema::kResultsSchema, schema::kResultsSchemaVersion);
  for (const auto& [k, v] : file_attrs) write_attr(root, k, v);
  H5Fflush(f, H5F_SCOPE_GLOBAL);
}

void Hdf5Store::write(const CellRecord& cell) {
  if (!writable_) throw std::logic_error("Hdf5Store opened read-only");
  ensure_space(path_, cell, "cell " + cell.key);
  Handle f(open_file(path_, true), H5Fclose, "open " + path_);
  Silence quiet;
  const std::string cells_group = schema::kCellsGroup;
  const std::string partial = cells_group + "/" + schema::kPartialPrefix + cell.key, final_name = cells_group + "/" + cell.key;
  if (H5Lexists(f, partial.c_str(), H5P_DEFAULT) > 0) H5Ldelete(f, partial.c_str(), H5P_DEFAULT);
  {
    Handle g(H5Gcreate2(f, partial.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create " + partial);
    for (const auto& [k, v] : cell.attributes) write_attr(g, k, v);
    for (const auto& [k, t] : cell.arrays) write_array(g, k, t);
  }
  H5Fflush(f, H5F_SCOPE_GLOBAL);
  if (H5Lexists(f, final_name.c_str(), H5P_DEFAULT) > 0) H5Ldelete(f, final_name.c_str(), H5P_DEFAULT);
  if (H5Lmove(f, partial.c_str(), f, final_name.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
    h5fail("linking cell " + cell.key);
  H5Fflush(f, H5F_SCOPE_GLOBAL);
}

namespace {
// Opens (creating when asked) a group and every group above it.
hid_t open_group_path(hid_t f, const std::string& path, bool create) {
  std::string so_far;
  size_t start = 1;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    so_far += "/" + path.substr(start, end - start);
    if (H5Lexists(f, so_far.c_str(), H5P_DEFAULT) <= 0) {
      if (!create) return -1;
      hid_t g = H5Gcreate2(f, so_far.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (g < 0) h5fail("create " + so_far);
      H5Gclose(g);
    }
    start = end + 1;
  }
  return H5Gopen2(f, path.c_str(), H5P_DEFAULT);
}

// The attributes and every array of the group `name` under `parent` (a cell, or a stored measurement).
CellRecord read_record(hid_t parent, const std::string& name, const std::string& key) {
  CellRecord rec;
  rec.key = key;
  Handle g(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose, "open " + name);
  rec.attributes = read_all_attrs(g);
  VisitState st{&rec.arrays, g};
  if (H5Ovisit(g, H5_INDEX_NAME, H5_ITER_INC, visit_dataset, &st) < 0) h5fail("reading " + name);
  return rec;
}

std::string measurements_path(const std::string& key) { return std::string(schema::kMeasurementsGroup) + "/" + key; }

// A SIGKILL while HDF5 creates or extends the progress file can leave it unreadable. It holds only measurements
// that can be run again, so it is moved aside to <file>.damaged (kept for inspection; a later one replaces it)
// with a warning, and the run goes on as if it were absent: never an abort over a cache.
void set_aside_if_damaged(const std::string& path) {
  if (!file_exists(path)) return;
  {
    Silence quiet;
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
      H5Fclose(f);
      return;
    }
  }
  const std::string aside = path + ".damaged";
  if (std::rename(path.c_str(), aside.c_str()) != 0)
    throw std::runtime_error(path + ": unreadable progress file, and it cannot be moved aside to " + aside);
  std::cerr << "psbench: warning: " << path << " is not a readable HDF5 file (interrupted while written); moved to "
            << aside << ", its measurements run again\n";
}
}  // namespace

// Stored measurements live in a file beside the results ("<results>.inprogress.h5"): HDF5 does not give back
// the space of deleted groups, so keeping them in the results file would grow it by every cell's samples.
// The file is removed once no cell has stored measurements left.
std::string Hdf5Store::measurements_file() const { return path_ + ".inprogress.h5"; }

void Hdf5Store::write_measurement(const std::string& key, int64_t m, const CellRecord& part) {
  if (!writable_) throw std::logic_error("Hdf5Store opened read-only");
  set_aside_if_damaged(measurements_file());
  ensure_space(measurements_file(), part, "measurement " + std::to_string(m) + " of cell " + key);
  Handle f(open_file(measurements_file(), true), H5Fclose, "open " + measurements_file());
  Silence quiet;
  Handle group(open_group_path(f, measurements_path(key), true), H5Gclose, "open " + measurements_path(key));
  const std::string name = schema::measurement_name(m), partial = schema::kPartialPrefix + name;
  if (H5Lexists(group, partial.c_str(), H5P_DEFAULT) > 0) H5Ldelete(group, partial.c_str(), H5P_DEFAULT);
  {
    Handle g(H5Gcreate2(group, partial.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create " + partial);
    for (const auto& [k, v] : part.attributes) write_attr(g, k, v);
    for (const auto& [k, t] : part.arrays) write_array(g, k, t.contiguous());
  }
  H5Fflush(f, H5F_SCOPE_GLOBAL);
  if (H5Lexists(group, name.c_str(), H5P_DEFAULT) > 0) H5Ldelete(group, name.c_str(), H5P_DEFAULT);
  if (H5Lmove(group, partial.c_str(), group, name.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
    h5fail("linking measurement " + name + " of cell " + key);
  H5Fflush(f, H5F_SCOPE_GLOBAL);
}

std::map<int64_t, CellRecord> Hdf5Store::read_measurements(const std::string& key) const {
  std::map<int64_t, CellRecord> out;
  set_aside_if_damaged(measurements_file());
  if (!file_exists(measurements_file())) return out;
  Handle f(open_file(measurements_file(), false), H5Fclose, "open " + measurements_file());
  Silence quiet;
  hid_t id = open_group_path(f, measurements_path(key), false);
  if (id < 0) return out;
  Handle group(id, H5Gclose, "open " + measurements_path(key));
  for (const auto& n : child_names(group)) {
    if (n.size() < 2 || n[0] != 'm') continue;  // leftovers of an interrupted write start with '.'
    out[std::stoll(n.substr(1))] = read_record(group, n, key);
  }
  return out;
}

void Hdf5Store::drop_measurements(const std::string& key) {
  set_aside_if_damaged(measurements_file());
  if (!file_exists(measurements_file())) return;
  bool empty = false;
  {
    Handle f(open_file(measurements_file(), true), H5Fclose, "open " + measurements_file());
    Silence quiet;
    const std::string path = measurements_path(key);
    if (H5Lexists(f, schema::kMeasurementsGroup, H5P_DEFAULT) > 0) {
      if (H5Lexists(f, path.c_str(), H5P_DEFAULT) > 0) H5Ldelete(f, path.c_str(), H5P_DEFAULT);
      Handle g(H5Gopen2(f, schema::kMeasurementsGroup, H5P_DEFAULT), H5Gclose, "open measurements");
      empty = child_names(g).empty();
    } else {
      empty = true;
    }
    H5Fflush(f, H5F_SCOPE_GLOBAL);
  }
  if (empty) std::remove(measurements_file().c_str());
}

std::set<std::string> Hdf5Store::complete_keys() const {
  std::set<std::string> keys;
  if (!file_exists(path_)) return keys;
  Handle f(open_file(path_, false), H5Fclose, "open " + path_);
  Silence quiet;
  if (H5Lexists(f, schema::kCellsGroup, H5P_DEFAULT) <= 0) return keys;
  Handle cells(H5Gopen2(f, schema::kCellsGroup, H5P_DEFAULT), H5Gclose, "open /cells");
  for (const auto& n : child_names(cells))
    if (!n.empty() && n[0] != '.') keys.insert(n);
  return keys;
}

std::vector<CellRecord> Hdf5Store::read_all() const {
  std::vector<CellRecord> out;
  Handle f(open_file(path_, false), H5Fclose, "open " + path_);
  Silence quiet;
  if (H5Lexists(f, schema::kCellsGroup, H5P_DEFAULT) <= 0) throw std::runtime_error(path_ + ": not a psbench results file (no /cells)");
  Handle cells(H5Gopen2(f, schema::kCellsGroup, H5P_DEFAULT), H5Gclose, "open /cells");
  for (const auto& n : child_names(cells)) {
    if (n.empty() || n[0] == '.') continue;
    out.push_back(read_record(cells, n, n));
  }
  return out;
}

std::map<std::string, std::string> Hdf5Store::file_attributes() const {
  Handle f(open_file(path_, false), H5Fclose, "open " + path_);
  Handle root(H5Gopen2(f, "/", H5P_DEFAULT), H5Gclose, "open /");
  return read_all_attrs(root);
}

at::Tensor read_hdf5_dataset(const std::string& path, const std::string& dataset) {
  Handle f(open_file(path, false), H5Fclose, "open " + path);
  Silence quiet;
  if (H5Lexists(f, dataset.c_str(), H5P_DEFAULT) <= 0)
    throw std::runtime_error(path + ": no dataset '" + dataset + "'");
  hid_t id = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  if (id < 0) throw std::runtime_error(path + ": '" + dataset + "' is not a dataset");
  Handle ds(id, H5Dclose, "open " + dataset);
  return read_array(ds);
}

void write_hdf5_dataset(const std::string& path, const std::string& dataset, const at::Tensor& t,
                        const std::map<std::string, std::string>& attributes) {
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) throw std::runtime_error("cannot create HDF5 file '" + path + "'");
  Handle f(id, H5Fclose, "create " + path);
  write_array(f, dataset, t.contiguous());
  for (const auto& [k, v] : attributes) write_attr(f, k, v);
}

std::set<std::string> MemoryStore::complete_keys() const {
  std::set<std::string> k;
  for (const auto& [key, c] : cells_) k.insert(key);
  return k;
}

std::vector<CellRecord> MemoryStore::read_all() const {
  std::vector<CellRecord> v;
  for (const auto& [key, c] : cells_) v.push_back(c);
  return v;
}

}  // namespace psbench
