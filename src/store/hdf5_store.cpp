#include <hdf5.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <optional>
#include <set>
#include <string_view>

#include <filesystem>

#include "core/errors.h"
#include "store/result_store.h"
#include "store/schema.h"

namespace psbench {

namespace {

// libhdf5 closes itself from atexit(). After a damaged file has made it fail part-way through reading an object
// header (fuzzing found headers whose sizes make its metadata cache give up with an entry still held), that close
// cannot finish: it prints "HDF5: infinite loop closing library" and a list of identifiers to stderr after
// psbench's one-line error. psbench closes every HDF5 object and file it opens (Handle, ~Hdf5Store) before it
// exits, including on errors and SIGTERM, so that close has nothing left to flush: skip it. Runs when the core
// library is loaded, before any HDF5 call (H5dont_atexit must precede the library's initialisation).
[[maybe_unused]] const bool kHdf5NoAtexitClose = (H5dont_atexit(), true);

[[noreturn]] void h5fail(const std::string& what) { throw std::runtime_error("HDF5: " + what); }

// Checks of the structures libhdf5 1.10 reads unchecked, made before it reads them (defined below).
void check_global_heaps(const std::string& path);
void check_root_header(const std::string& path);
void check_header_of(hid_t obj);
void check_path(hid_t loc, const std::string& path);

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
  check_header_of(obj);
  // libhdf5 1.10 enumerates attributes by index through a table it builds by decoding every attribute message;
  // when one fails to decode, its error path (H5A__compact_build_table) closes the table's unset slots, whose
  // contents are whatever its free lists held: a crash depending on the heap (found by tests/fuzz, confirmed
  // with valgrind). A lookup by name decodes the same messages one by one and stops cleanly at a damaged one,
  // and keeps the decoded messages for the table: so a lookup of a name psbench never writes goes first.
  if (info.num_attrs > 0 && H5Aexists(obj, "\x7f psbench: no such attribute") != 0)
    h5fail("an attribute message cannot be decoded");
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    // An attribute whose name cannot be read is damage, not something to skip: a record missing it would be
    // read as if it had never been written.
    const ssize_t n = H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) h5fail("name of attribute " + std::to_string(i));
    std::string name(static_cast<size_t>(n), '\0');
    if (H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1, H5P_DEFAULT) < 0)
      h5fail("name of attribute " + std::to_string(i));
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
  if (nd < 0) h5fail("dataspace rank");
  std::vector<hsize_t> dims(static_cast<size_t>(nd));
  if (nd > 0 && H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0) h5fail("dataspace dimensions");
  // A damaged dataspace can claim any size, and at::empty would try to allocate it: the elements must fit in
  // the bytes the dataset stores, allowing for deflate (at most about 1032:1) on chunked arrays.
  const hsize_t stored = H5Dget_storage_size(ds);
  constexpr hsize_t kMaxElements = hsize_t{1} << 40;
  hsize_t elements = 1;
  for (const hsize_t d : dims) {
    if (d != 0 && elements > kMaxElements / d) h5fail("dataspace of more than 2^40 elements");
    elements *= d;
  }
  if (elements > 0 && elements > 1100 * stored + 4096)
    h5fail("dataspace of " + std::to_string(elements) + " elements, but only " + std::to_string(stored) +
           " bytes stored");
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

// Collects the names of a group's links. Iterating the links of a group reads its symbol table, not the headers
// of the objects it names (H5Ovisit would decode each one before psbench could check it: check_path). Nothing is
// read (nor thrown) inside the callback: an exception unwinding through libhdf5's C frames would leave its
// metadata cache entries protected.
herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* data) {
  try {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
  } catch (...) {
    return -1;
  }
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
    check_global_heaps(path);
    check_root_header(path);
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) throw ConfigError(path + ": not a readable HDF5 file (truncated, or another format)");
    return f;
  }
  if (file_exists(path)) {
    check_root_header(path);
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
    const ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) h5fail("name of link " + std::to_string(i));
    std::string s(static_cast<size_t>(n), '\0');
    if (H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), s.size() + 1, H5P_DEFAULT) < 0)
      h5fail("name of link " + std::to_string(i));
    names.push_back(s);
  }
  return names;
}

// Reading a results file is reading outside input (it may come from elsewhere, or be damaged since): any failure
// while reading it is a ConfigError naming the file, so the CLI exits 2 with one line.
template <class F>
auto reading(const std::string& path, F&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(path + ": damaged, or not an HDF5 file psbench can read (" + first_line(e.what()) + ")");
  }
}

uint64_t little_endian(const unsigned char* p, size_t width) {
  uint64_t v = 0;
  for (size_t i = width; i-- > 0;) {
    if (i >= 8 && p[i] != 0) return ~uint64_t{0};  // wider than 64 bits: larger than any file
    if (i < 8) v = (v << 8) | p[i];
  }
  return v;
}

// The bytes of an HDF5 file as libhdf5's format lays them out, read without libhdf5: for the checks below of
// structures that libhdf5 1.10 reads unchecked.
class RawFile {
 public:
  explicit RawFile(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    struct stat st;
    if (fd_ < 0 || ::fstat(fd_, &st) != 0) return;
    size_ = static_cast<uint64_t>(st.st_size);
    // The superblock is at the first of byte 0, 512, 1024, 2048... that holds the signature (where libhdf5
    // looks): sizes of addresses and lengths, and the base address that addresses count from.
    static const std::string_view kSignature("\x89HDF\r\n\x1a\n", 8);
    for (uint64_t at = 0; at + 48 <= size_; at = at == 0 ? 512 : 2 * at) {
      const std::string sb = read(at, 128);  // the largest superblock prefix read below
      if (sb.size() < 48 || std::string_view(sb).substr(0, 8) != kSignature) continue;
      const auto* b = reinterpret_cast<const unsigned char*>(sb.data());
      const unsigned version = b[8];
      offset_size_ = version < 2 ? b[13] : b[9];
      length_size_ = version < 2 ? b[14] : b[10];
      const size_t base_at = version == 0 ? 24 : version == 1 ? 28 : 12;
      if (offset_size_ < 2 || offset_size_ > 8 || length_size_ < 2 || length_size_ > 8) break;
      base_ = little_endian(b + base_at, offset_size_);
      // The root group's object header: in versions 0 and 1 the second field of the root symbol table entry
      // after the base, free-space, end-of-file and driver addresses; in 2 and 3 after base, extension and
      // end-of-file addresses.
      const size_t root_at = version < 2 ? base_at + 5 * offset_size_ : base_at + 3 * offset_size_;
      if (root_at + offset_size_ <= sb.size()) root_ = little_endian(b + root_at, offset_size_);
      valid_ = true;
      break;
    }
  }
  ~RawFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;

  // libhdf5 refuses the file itself (no superblock, or sizes it does not know): nothing to check here.
  bool valid() const { return valid_; }
  uint64_t size() const { return size_; }
  size_t offset_size() const { return offset_size_; }
  size_t length_size() const { return length_size_; }
  uint64_t base() const { return base_; }
  // The root group's object header address (relative to base()), when the superblock was read whole.
  std::optional<uint64_t> root() const { return root_; }
  const std::string& path() const { return path_; }

  std::string read(uint64_t at, uint64_t n) const {
    if (at >= size_) return {};
    n = std::min(n, size_ - at);
    std::string b(static_cast<size_t>(n), '\0');
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, b.data() + got, static_cast<size_t>(n) - got, static_cast<off_t>(at + got));
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    b.resize(got);
    return b;
  }

  // libhdf5 1.10 walks the objects of a global heap collection (the "GCOL" blocks holding variable-length
  // strings: every attribute psbench writes) by the sizes it reads from them, unchecked
  // (H5HG__cache_heap_deserialize): a free-space object of size 0 makes it loop for ever, a size past the end
  // of the collection makes it read beyond its buffer. This walks the collection at byte `at` the same way with
  // the bounds it lacks. Returns the objects (index -> size), nothing when `at` holds no version-1 collection
  // (libhdf5 refuses those itself); a ConfigError when libhdf5 would loop or overrun on it.
  std::optional<std::map<uint64_t, uint64_t>> collection(uint64_t at) const {
    const uint64_t header = 8 + length_size_, object_header = 8 + length_size_;
    const std::string head = read(at, header);
    if (head.size() < 5 || head.compare(0, 4, "GCOL") != 0 || head[4] != 1) return std::nullopt;
    auto fail = [&](const std::string& what) {
      throw ConfigError(path_ + ": damaged HDF5 file: the global heap collection at byte " + std::to_string(at) +
                        " " + what + " (libhdf5 would loop or read out of bounds on it)");
    };
    if (head.size() < header) fail("is cut off by the end of the file");
    const uint64_t size = little_endian(reinterpret_cast<const unsigned char*>(head.data()) + 8, length_size_);
    if (size < header) fail("is smaller than its own header");
    if (size > size_ - at) fail("runs past the end of the file");
    const std::string c = read(at, size);
    const auto* bytes = reinterpret_cast<const unsigned char*>(c.data());
    std::map<uint64_t, uint64_t> objects;
    for (uint64_t p = header; p < size;) {
      if (p + object_header > size) break;  // too small for an object: free space, as libhdf5 takes it
      const uint64_t index = little_endian(bytes + p, 2), object_size = little_endian(bytes + p + 8, length_size_);
      if (object_size > size) fail("has an object larger than itself");
      // Object 0 is the free space, its size counting its header; the others are padded to 8 bytes.
      const uint64_t need = index > 0 ? object_header + (object_size + 7) / 8 * 8 : object_size;
      if (need == 0) fail("has a free-space object of size 0");
      if (need > size - p) fail("has an object running past its end");
      if (index > 0) objects[index] = object_size;
      p += need;
    }
    return objects;
  }

 private:
  std::string path_;
  int fd_;
  uint64_t size_ = 0, base_ = 0;
  std::optional<uint64_t> root_;
  size_t offset_size_ = 8, length_size_ = 8;
  bool valid_ = false;
};

// Every global heap collection of the file is walked (RawFile::collection) before libhdf5 reads it: tests/fuzz
// found one damaged byte that hung the reader for an hour. A collection is found by its signature and version
// byte wherever it lies, as libhdf5 accepts one at any address that holds them; a chance "GCOL\1" inside
// compressed data would also need a size that fits the file (odds about 2^-40 per byte) to be refused.
void check_global_heaps(const std::string& path) {
  const RawFile file(path);
  if (!file.valid()) return;  // H5Fopen reports it
  constexpr uint64_t kBlock = uint64_t{1} << 20;
  std::string carry;
  for (uint64_t at = 0; at < file.size(); at += kBlock) {
    const std::string block = carry + file.read(at, kBlock);
    const uint64_t base = at - carry.size();
    for (size_t i = block.find("GCOL"); i != std::string::npos; i = block.find("GCOL", i + 1)) (void)file.collection(base + i);
    carry = block.size() >= 3 ? block.substr(block.size() - 3) : block;
  }
}

// The link names of an old-style group (a v1 B-tree of symbol table nodes whose entries name their links by
// offsets into the group's local heap). libhdf5 1.10 copies a name with strdup from its offset and compares B-tree
// keys with strcmp, neither bounded by the heap: a name without its NUL runs past the heap's data (tests/fuzz
// under ASan: a heap overflow in H5MM_xstrdup from H5G__ent_to_link). Every key and entry offset is checked to
// name a NUL-terminated string inside the heap's data before libhdf5 iterates or searches the group.
void check_group_names(const RawFile& file, uint64_t btree, uint64_t heap) {
  const size_t O = file.offset_size(), L = file.length_size();
  auto fail = [&](const std::string& what) {
    throw ConfigError(file.path() + ": damaged HDF5 file: the group whose B-tree is at byte " +
                      std::to_string(file.base() + btree) + " has " + what + " (libhdf5 would read out of bounds on it)");
  };
  // Local heap: "HEAP", version 0, 3 reserved bytes, the data's size (L), its free list's head (L), its address (O).
  const std::string h = file.read(file.base() + heap, 8 + 2 * L + O);
  if (h.size() < 8 + 2 * L + O || h.compare(0, 4, "HEAP") != 0) return;  // libhdf5 refuses it
  const auto* hb = reinterpret_cast<const unsigned char*>(h.data());
  const uint64_t data_size = little_endian(hb + 8, L), data_at = little_endian(hb + 8 + 2 * L, O);
  if (data_size > file.size() || data_at > file.size()) return;  // libhdf5 cannot read the heap: it says so
  const std::string names = file.read(file.base() + data_at, data_size);
  auto check_name = [&](uint64_t offset, const char* what) {
    if (offset >= names.size() || names.find('\0', offset) == std::string::npos)
      fail(std::string(what) + " naming heap offset " + std::to_string(offset) + " of its " +
           std::to_string(names.size()) + "-byte name heap, with no NUL-terminated name there");
  };
  std::vector<uint64_t> nodes{btree};
  std::set<uint64_t> seen;
  for (size_t n = 0; n < nodes.size() && n < 100000; ++n) {
    if (!seen.insert(nodes[n]).second) continue;
    const uint64_t at = file.base() + nodes[n];
    const std::string head = file.read(at, 8 + 2 * O);
    if (head.size() < 8 + 2 * O) return;
    const auto* nb = reinterpret_cast<const unsigned char*>(head.data());
    if (head.compare(0, 4, "TREE") == 0 && nb[4] == 0) {
      // A group B-tree node: level, entries used, two siblings, then key, child, key, ..., child, key (children
      // are nodes of the level below, symbol table nodes at level 0).
      const uint64_t used = little_endian(nb + 6, 2);
      const std::string body = file.read(at + 8 + 2 * O, used * (L + O) + L);
      if (body.size() < used * (L + O) + L) continue;  // cut off: libhdf5 refuses the node
      const auto* bb = reinterpret_cast<const unsigned char*>(body.data());
      for (uint64_t i = 0; i <= used; ++i) {
        // The first key is the empty name's offset (0) in every group psbench or libhdf5 writes.
        check_name(little_endian(bb + i * (L + O), L), "a B-tree key");
        if (i < used) nodes.push_back(little_endian(bb + i * (L + O) + L, O));
      }
    } else if (head.compare(0, 4, "SNOD") == 0) {
      // A symbol table node: version, reserved, the number of entries, then entries of 2 O + 24 bytes each,
      // the first field the name's offset in the heap.
      const uint64_t count = little_endian(nb + 6, 2), entry = 2 * O + 24;
      const std::string body = file.read(at + 8, count * entry);
      for (uint64_t i = 0; i < count && (i + 1) * entry <= body.size(); ++i)
        check_name(little_endian(reinterpret_cast<const unsigned char*>(body.data()) + i * entry, O), "a link");
    }
  }
}

// The object header at `addr` (relative to the file's base; version 1, as psbench writes; headers of another
// version, or ones this cannot follow, are left to libhdf5), walked before libhdf5 decodes it, for what libhdf5
// 1.10 reads unchecked:
// - a continuation message (type 0x10: the address and length of the header's next chunk) is decoded as soon as
//   the chunk holding it is read, at its full O + L bytes whatever the message's size (tests/fuzz under Valgrind:
//   reads past the chunk in H5O__cont_decode), and the chunk it names is allocated at its stated length;
// - the heap ID that a variable-length attribute value holds (collection address, object index, length): an
//   index the collection does not have makes H5HG_read dereference a pointer from past its object table, an
//   object longer than the stated length is copied past the buffer sized by that length (tests/fuzz: a segfault
//   in H5HG_read), and a damaged length makes it allocate and copy up to 2^32 elements (tests/fuzz: a 20 s hang).
void check_object_header(const RawFile& file, uint64_t addr) {
  const size_t O = file.offset_size(), L = file.length_size();
  auto fail = [&](const std::string& what) {
    throw ConfigError(file.path() + ": damaged HDF5 file: the object header at byte " +
                      std::to_string(file.base() + addr) + " has " + what + " (libhdf5 would read out of bounds on it)");
  };
  const std::string prefix = file.read(file.base() + addr, 16);
  if (prefix.size() < 16 || prefix[0] != 1) return;
  const auto* pb = reinterpret_cast<const unsigned char*>(prefix.data());
  // Chunks of messages: the first follows the 16-byte prefix; continuation messages (type 0x10) add others.
  std::vector<std::pair<uint64_t, uint64_t>> chunks{{file.base() + addr + 16, little_endian(pb + 8, 4)}};
  std::set<uint64_t> seen;
  for (size_t c = 0; c < chunks.size() && c < 1024; ++c) {
    const auto [at, length] = chunks[c];
    if (!seen.insert(at).second || length > file.size()) continue;
    const std::string chunk = file.read(at, length);
    const auto* b = reinterpret_cast<const unsigned char*>(chunk.data());
    for (uint64_t p = 0; p + 8 <= chunk.size();) {
      const uint64_t type = little_endian(b + p, 2), size = little_endian(b + p + 2, 2);
      const uint64_t data = p + 8;
      if (size > chunk.size() - data) break;  // libhdf5 refuses the header itself
      p = data + size;
      if (type == 0x10) {
        if (size < O + L)
          fail("a continuation message of " + std::to_string(size) + " bytes, too short for the " +
               std::to_string(O + L) + "-byte address and length it holds");
        const uint64_t next = little_endian(b + data, O), next_length = little_endian(b + data + O, L);
        if (next > file.size() || next_length > file.size() - std::min(file.size(), file.base() + next))
          fail("a continuation message naming " + std::to_string(next_length) + " bytes at byte " +
               std::to_string(next) + ", past the end of the file");
        chunks.emplace_back(file.base() + next, next_length);
        continue;
      }
      if (type == 0x11 && size >= 2 * O) {  // symbol table message: the group's B-tree and local heap
        check_group_names(file, little_endian(b + data, O), little_endian(b + data + O, O));
        continue;
      }
      // (A shared message, flag 0x02, holds a reference to the attribute elsewhere; psbench writes none.)
      if (type != 0x0C || size < 8 || (b[p - size - 4] & 0x02)) continue;
      // Attribute message: version, flags or reserved, then the sizes of name, datatype and dataspace (version 3
      // adds an encoding byte); version 1 pads each part to 8 bytes.
      const unsigned version = b[data];
      const uint64_t name_len = little_endian(b + data + 2, 2), type_len = little_endian(b + data + 4, 2),
                     space_len = little_endian(b + data + 6, 2);
      auto padded = [&](uint64_t n) { return version == 1 ? (n + 7) / 8 * 8 : n; };
      const uint64_t type_at = data + (version == 3 ? 9 : 8) + padded(name_len);
      const uint64_t value_at = type_at + padded(type_len) + padded(space_len);
      if (version < 1 || version > 3) continue;
      // libhdf5 decodes the parts at those sizes without checking them against the message's own size: a damaged
      // size sends it reading past the message (tests/fuzz under Valgrind: an invalid read in H5Aexists).
      if (value_at > p)
        fail("an attribute message whose name, datatype and dataspace (" + std::to_string(name_len) + ", " +
             std::to_string(type_len) + ", " + std::to_string(space_len) + " bytes) overrun its " +
             std::to_string(size) + " bytes");
      // It copies the name with strdup: a name without its NUL is read on past the message (tests/fuzz under
      // ASan: a heap overflow in H5MM_strdup from H5Aexists).
      const uint64_t name_at = data + (version == 3 ? 9 : 8);
      if (name_len == 0 || std::memchr(b + name_at, 0, name_len) == nullptr)
        fail("an attribute message whose " + std::to_string(name_len) + "-byte name has no terminating NUL");
      if (type_len < 16 || type_at + 16 > p) continue;
      if ((b[type_at] & 0x0f) != 9) continue;  // not variable-length: no heap IDs
      const uint64_t base_size = little_endian(b + type_at + 12, 4);  // the element type's size
      const uint64_t id_size = 4 + O + 4;
      for (uint64_t v = value_at; v + id_size <= p; v += id_size) {
        const uint64_t length = little_endian(b + v, 4), address = little_endian(b + v + 4, O),
                       index = little_endian(b + v + 4 + O, 4);
        if (address == 0) continue;  // a null value: libhdf5 reads no heap
        const auto objects = file.collection(file.base() + address);
        if (!objects) continue;  // no collection there: libhdf5 says so itself
        const auto it = objects->find(index);
        if (it == objects->end())
          fail("a variable-length value naming object " + std::to_string(index) + " of the global heap collection at byte " +
               std::to_string(file.base() + address) + ", which has no such object");
        // libhdf5 writes an object of exactly length x element size; a larger one would be copied past the
        // buffer sized by the length, a larger length makes it allocate and copy that much (a hang at 2^31).
        if (length > (uint64_t{1} << 32) / std::max<uint64_t>(base_size, 1) || it->second != length * base_size)
          fail("a variable-length value of " + std::to_string(length) + " elements whose heap object holds " +
               std::to_string(it->second) + " bytes");
      }
    }
  }
}

// The header of an object libhdf5 has opened: checked before its attributes are read.
void check_header_of(hid_t obj) {
  H5O_info_t info;
  if (H5Oget_info(obj, &info) < 0) return;
  const ssize_t name_size = H5Fget_name(obj, nullptr, 0);
  if (name_size <= 0) return;
  std::string path(static_cast<size_t>(name_size), '\0');
  if (H5Fget_name(obj, path.data(), path.size() + 1) < 0) return;
  const RawFile file(path);
  if (file.valid()) check_object_header(file, info.addr);
}

// The root group's header, before H5Fopen decodes it.
void check_root_header(const std::string& path) {
  const RawFile file(path);
  if (file.valid() && file.root()) check_object_header(file, *file.root());
}

// The header of every object along `path` (relative to `loc`), each before libhdf5 decodes it to follow the path
// further or to open it: a link's address comes from its parent's symbol table, not from its own header.
void check_path(hid_t loc, const std::string& path) {
  const ssize_t name_size = H5Fget_name(loc, nullptr, 0);
  if (name_size <= 0) return;
  std::string file_name(static_cast<size_t>(name_size), '\0');
  if (H5Fget_name(loc, file_name.data(), file_name.size() + 1) < 0) return;
  const RawFile file(file_name);
  if (!file.valid()) return;
  for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string prefix = path.substr(0, end);
    H5L_info_t link;
    if (!prefix.empty() && prefix != "/" && prefix != ".") {
      // A missing link, or a soft or external one (psbench writes neither): libhdf5 reports it when it is opened.
      if (H5Lget_info(loc, prefix.c_str(), &link, H5P_DEFAULT) < 0 || link.type != H5L_TYPE_HARD) return;
      check_object_header(file, link.u.address);
    }
    if (end == std::string::npos) return;
  }
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
  check_header_of(root);
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
  // Read-only opens check the file's heaps themselves; a file opened to append is checked once here, not at
  // every cell written (psbench wrote everything since).
  if (writable_ && !created) check_global_heaps(path_);
  Handle f(open_file(path_, writable_), H5Fclose, "open " + path_);
  reading(path_, [&] { check_results_file(f, path_, created); });
  if (!writable_) return;
  Silence quiet;
  if (H5Lexists(f, schema::kCellsGroup, H5P_DEFAULT) <= 0) {
    Handle g(H5Gcreate2(f, schema::kCellsGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /cells");
  }
  // Discard leftovers of an interrupted write: they were never linked as complete cells.
  check_path(f, schema::kCellsGroup);
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

// The paths of the datasets below the group `g` (each `prefix` + its name), every object's header checked before
// libhdf5 decodes it; an object linked twice (a damaged file can link a group into itself) is listed once.
void list_datasets(hid_t g, const std::string& prefix, std::vector<std::string>& out, std::set<haddr_t>& seen) {
  std::vector<std::string> names;
  if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &names) < 0) h5fail("listing its datasets");
  for (const auto& n : names) {
    check_path(g, n);
    H5O_info_t info;
    if (H5Oget_info_by_name(g, n.c_str(), &info, H5P_DEFAULT) < 0) h5fail("object info of " + prefix + n);
    if (!seen.insert(info.addr).second) continue;
    if (info.type == H5O_TYPE_DATASET) {
      out.push_back(prefix + n);
    } else if (info.type == H5O_TYPE_GROUP) {
      Handle sub(H5Gopen2(g, n.c_str(), H5P_DEFAULT), H5Gclose, "open group " + prefix + n);
      list_datasets(sub, prefix + n + "/", out, seen);
    }
  }
}

// The attributes and every array of the group `name` under `parent` (a cell, or a stored measurement); an error
// names the record as `what`.
CellRecord read_record(hid_t parent, const std::string& name, const std::string& key, const std::string& what) {
  try {
    CellRecord rec;
    rec.key = key;
    check_path(parent, name);
    Handle g(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose, "open group");
    rec.attributes = read_all_attrs(g);
    std::vector<std::string> datasets;
    std::set<haddr_t> seen;
    list_datasets(g, "", datasets, seen);
    for (const auto& d : datasets) {
      Handle ds(H5Dopen2(g, d.c_str(), H5P_DEFAULT), H5Dclose, "opening " + d);
      try {
        rec.arrays[d] = read_array(ds);
      } catch (const std::exception& e) {
        h5fail(d + ": " + first_line(e.what()));
      }
    }
    return rec;
  } catch (const ConfigError&) {
    throw;  // already names the file and the damage
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": " + first_line(e.what()));
  }
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
  return reading(measurements_file(), [&] {
    check_path(f, measurements_path(key));
    hid_t id = open_group_path(f, measurements_path(key), false);
    if (id < 0) return out;
    Handle group(id, H5Gclose, "open " + measurements_path(key));
    for (const auto& n : child_names(group)) {
      if (n.size() < 2 || n[0] != 'm') continue;  // leftovers of an interrupted write start with '.'
      out[std::stoll(n.substr(1))] = read_record(group, n, key, "cell " + key + " measurement " + n);
    }
    return out;
  });
}

void Hdf5Store::drop_measurements(const std::string& key) {
  set_aside_if_damaged(measurements_file());
  if (!file_exists(measurements_file())) return;
  bool empty = false;
  {
    Handle f(open_file(measurements_file(), true), H5Fclose, "open " + measurements_file());
    Silence quiet;
    const std::string path = measurements_path(key);
    check_path(f, path);
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
  return reading(path_, [&] {
    if (H5Lexists(f, schema::kCellsGroup, H5P_DEFAULT) <= 0) return keys;
    check_path(f, schema::kCellsGroup);
    Handle cells(H5Gopen2(f, schema::kCellsGroup, H5P_DEFAULT), H5Gclose, "open /cells");
    for (const auto& n : child_names(cells))
      if (!n.empty() && n[0] != '.') keys.insert(n);
    return keys;
  });
}

std::vector<CellRecord> Hdf5Store::read_all() const {
  std::vector<CellRecord> out;
  Handle f(open_file(path_, false), H5Fclose, "open " + path_);
  Silence quiet;
  return reading(path_, [&] {
    if (H5Lexists(f, schema::kCellsGroup, H5P_DEFAULT) <= 0)
      throw ConfigError(path_ + ": not a psbench results file (no " + schema::kCellsGroup + " group)");
    check_path(f, schema::kCellsGroup);
    Handle cells(H5Gopen2(f, schema::kCellsGroup, H5P_DEFAULT), H5Gclose, "open /cells");
    for (const auto& n : child_names(cells)) {
      if (n.empty() || n[0] == '.') continue;
      out.push_back(read_record(cells, n, n, "cell " + n));
    }
    return out;
  });
}

std::map<std::string, std::string> Hdf5Store::file_attributes() const {
  Handle f(open_file(path_, false), H5Fclose, "open " + path_);
  Silence quiet;
  return reading(path_, [&] {
    Handle root(H5Gopen2(f, "/", H5P_DEFAULT), H5Gclose, "open /");
    return read_all_attrs(root);
  });
}

at::Tensor read_hdf5_dataset(const std::string& path, const std::string& dataset) {
  Handle f(open_file(path, false), H5Fclose, "open " + path);
  Silence quiet;
  return reading(path, [&] {
    check_path(f, dataset);
    if (H5Lexists(f, dataset.c_str(), H5P_DEFAULT) <= 0) throw ConfigError(path + ": no dataset '" + dataset + "'");
    hid_t id = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
    if (id < 0) throw ConfigError(path + ": '" + dataset + "' is not a dataset");
    Handle ds(id, H5Dclose, "open " + dataset);
    return read_array(ds);
  });
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
