#include "data/fashion_mnist.h"

#include <zlib.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "core/errors.h"

namespace psbench {

namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned byte, 1 dimension
constexpr int64_t kSide = 28;
// Larger than any real IDX set of 28x28 images; guards the allocation against a corrupted count.
constexpr int64_t kMaxCount = 10'000'000;

std::string missing_hint(const std::string& path) {
  return path + ": not found (Fashion-MNIST comes from the Debian package dataset-fashion-mnist: run make deps, "
                "or set the dataset/prior option root)";
}

// A gzip stream that turns every zlib failure into a ConfigError naming the file.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw ConfigError(missing_hint(path));
    if (!std::filesystem::is_regular_file(path, ec)) throw ConfigError(path + ": not a regular file");
    if (std::filesystem::file_size(path, ec) == 0) throw ConfigError(path + ": empty file");
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) throw ConfigError(path + ": cannot open");
    gzbuffer(f_, 1 << 17);
  }
  ~GzFile() {
    if (f_) gzclose(f_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads exactly n bytes or throws (`what` names the part being read).
  void read_exact(void* dst, int64_t n, const std::string& what) {
    auto* p = static_cast<unsigned char*>(dst);
    int64_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - done, 1 << 30));
      const int got = gzread(f_, p + done, chunk);
      if (got < 0) throw ConfigError(path_ + ": corrupted gzip data while reading " + what + " (" + error() + ")");
      if (gzdirect(f_)) throw ConfigError(path_ + ": not a gzip file (expected a gzip-compressed IDX file)");
      if (got == 0) {
        throw ConfigError(path_ + ": truncated: " + what + " needs " + std::to_string(n) + " bytes, file ends after " +
                          std::to_string(done) + (error().empty() ? "" : " (" + error() + ")"));
      }
      done += got;
    }
  }
  // The stream must end here; reading on also checks the gzip trailer (CRC and length).
  void expect_end() {
    unsigned char extra[1];
    const int got = gzread(f_, extra, 1);
    if (got < 0) throw ConfigError(path_ + ": corrupted gzip data at the end of the stream (" + error() + ")");
    if (got > 0) throw ConfigError(path_ + ": trailing data after the declared items (wrong item count in header?)");
    if (!error().empty()) throw ConfigError(path_ + ": damaged gzip stream (" + error() + ")");
  }

 private:
  std::string error() const {
    int code = Z_OK;
    const char* msg = gzerror(f_, &code);
    return (code == Z_OK || code == Z_STREAM_END || !msg) ? std::string() : std::string(msg);
  }
  std::string path_;
  gzFile f_ = nullptr;
};

uint32_t big_endian(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

int64_t checked_count(uint32_t n, const std::string& path) {
  if (n == 0 || n > kMaxCount)
    throw ConfigError(path + ": implausible item count " + std::to_string(n) + " in the IDX header");
  return static_cast<int64_t>(n);
}

at::Tensor read_images(const std::string& path) {
  GzFile f(path);
  unsigned char header[16];
  f.read_exact(header, 16, "the IDX header");
  const uint32_t magic = big_endian(header);
  if (magic != kImagesMagic)
    throw ConfigError(path + ": bad magic number " + std::to_string(magic) + " (an IDX image file has " +
                      std::to_string(kImagesMagic) + ")");
  const int64_t n = checked_count(big_endian(header + 4), path);
  const uint32_t rows = big_endian(header + 8), cols = big_endian(header + 12);
  if (rows != kSide || cols != kSide)
    throw ConfigError(path + ": images are " + std::to_string(rows) + "x" + std::to_string(cols) + ", expected 28x28");
  auto images = at::empty({n, kSide, kSide}, at::kByte);
  f.read_exact(images.data_ptr<uint8_t>(), n * kSide * kSide, std::to_string(n) + " images");
  f.expect_end();
  return images;
}

at::Tensor read_labels(const std::string& path) {
  GzFile f(path);
  unsigned char header[8];
  f.read_exact(header, 8, "the IDX header");
  const uint32_t magic = big_endian(header);
  if (magic != kLabelsMagic)
    throw ConfigError(path + ": bad magic number " + std::to_string(magic) + " (an IDX label file has " +
                      std::to_string(kLabelsMagic) + ")");
  const int64_t n = checked_count(big_endian(header + 4), path);
  auto raw = at::empty({n}, at::kByte);
  f.read_exact(raw.data_ptr<uint8_t>(), n, std::to_string(n) + " labels");
  f.expect_end();
  const int64_t bad = raw.ge(kFashionMnistClasses).sum().item<int64_t>();
  if (bad > 0)
    throw ConfigError(path + ": " + std::to_string(bad) + " labels outside 0.." + std::to_string(kFashionMnistClasses - 1));
  return raw.to(at::kLong);
}

}  // namespace

FashionMnistSplit read_fashion_mnist_files(const std::string& images_path, const std::string& labels_path) {
  FashionMnistSplit s;
  s.images = read_images(images_path);
  s.labels = read_labels(labels_path);
  if (s.images.size(0) != s.labels.size(0))
    throw ConfigError(images_path + " has " + std::to_string(s.images.size(0)) + " images but " + labels_path +
                      " has " + std::to_string(s.labels.size(0)) + " labels");
  return s;
}

std::shared_ptr<const FashionMnistSplit> load_fashion_mnist(const std::string& root, const std::string& split) {
  std::string stem;
  if (split == "train") stem = "train";
  else if (split == "test") stem = "t10k";
  else throw ConfigError("fashion_mnist: unknown split '" + split + "' (known: test, train)");
  if (!std::filesystem::is_directory(root)) throw ConfigError(missing_hint(root));

  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const FashionMnistSplit>> cache;
  const std::string key = std::filesystem::weakly_canonical(root).string() + "|" + split;
  std::lock_guard<std::mutex> lock(mutex);  // one loader at a time: a split is read once
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const auto dir = std::filesystem::path(root);
  auto s = std::make_shared<const FashionMnistSplit>(read_fashion_mnist_files(
      (dir / (stem + "-images-idx3-ubyte.gz")).string(), (dir / (stem + "-labels-idx1-ubyte.gz")).string()));
  cache[key] = s;
  return s;
}

at::Tensor fashion_mnist_to_float(const at::Tensor& images, at::ScalarType dtype) {
  return images.to(dtype) / 127.5 - 1.0;
}

FashionMnistDataset::FashionMnistDataset(const std::string& root, const std::string& split, int64_t offset)
    : split_name_(split), offset_(offset), data_(load_fashion_mnist(root, split)) {
  if (offset_ >= data_->size())
    throw ConfigError("dataset fashion_mnist: offset=" + std::to_string(offset_) + " is beyond the " +
                      std::to_string(data_->size()) + " images of split " + split_name_);
}

int64_t FashionMnistDataset::position(int64_t index) const {
  const int64_t i = offset_ + index;
  if (index < 0 || i >= data_->size())
    throw ConfigError("dataset fashion_mnist: measurement " + std::to_string(index) + " needs image " +
                      std::to_string(i) + ", beyond the " + std::to_string(data_->size()) + " images of split " +
                      split_name_ + " (offset=" + std::to_string(offset_) + ")");
  return i;
}

at::Tensor FashionMnistDataset::ground_truth(int64_t index, const DrawSource&, at::Generator&) const {
  return fashion_mnist_to_float(data_->images[position(index)]).unsqueeze(0);
}

int64_t FashionMnistDataset::label(int64_t index) const {
  return data_->labels[position(index)].item<int64_t>();
}

namespace {
DatasetRegistrar reg_fashion_mnist(
    {"fashion_mnist",
     "Fashion-MNIST images (Debian package dataset-fashion-mnist) as [1, 28, 28] in [-1, 1]; measurement i is "
     "image offset + i of the split",
     {OptionSpec::choice("split", "test", {"test", "train"}, "which IDX split the images come from"),
      OptionSpec::text("root", kFashionMnistDefaultRoot, "directory holding the four *-ubyte.gz files"),
      OptionSpec::integer("offset", 0, "index of the image used by measurement 0").at_least(0)},
     [](const Options& o) -> std::unique_ptr<Dataset> {
       return std::make_unique<FashionMnistDataset>(o.get_string("root"), o.get_string("split"), o.get_int("offset"));
     }});
}  // namespace

}  // namespace psbench
