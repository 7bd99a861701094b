// Seeded random-mutation fuzzing of every loader of outside input (issue 18, item 2): experiment YAML, TorchScript
// sidecar YAML, gzip IDX files, image files, psbench model files, TorchScript modules and HDF5 results. Each target
// starts from a corpus of valid inputs, applies a few random edits per mutant (bit flips, interesting bytes and
// integers, insertions, deletions, duplicated or spliced ranges, truncation; YAML mutants also swap scalars for
// hostile ones: NaN, inf, huge numbers, aliases, tags, empty collections) and loads it. A mutant must either load or
// be refused with a ConfigError whose message is one line naming the file; any other exception, and of course a
// crash, is a finding. The generator is seeded: the same build runs the same mutants.
//
// Not coverage-guided (libFuzzer would need the core built a second time with clang's -fsanitize=fuzzer-no-link;
// see README "Reliability"). Run under `make sanitize` the same mutants are also checked by AddressSanitizer and
// UndefinedBehaviorSanitizer. PSBENCH_FUZZ_SCALE (default 1) multiplies every target's mutant count for longer runs.
// Before each load the input is written to <temp>/fuzz_current/<target><ext> (the test's temporary directory,
// /tmp/psbench-test-fuzz-<pid>): after a crash it is the reproducer, and a load that hangs for 20 s is aborted by
// a watchdog naming it. A finding that fails a check is kept in <temp>/fuzz_findings/. Each distinct root cause is
// copied to tests/fuzz/regressions/<target>/ by hand (gzipped as <name><ext>.gz when large) and replayed first
// by every later run.
#include <catch2/catch.hpp>
#include <torch/script.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "core/errors.h"
#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "io/png.h"
#include "nn/edm.h"
#include "priors/neural.h"
#include "runner/experiment.h"
#include "runner/report.h"
#include "store/result_store.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace psbench;
using Bytes = std::string;

namespace {

const std::string kSource = PSBENCH_SOURCE_DIR;

Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
}

Bytes gzip(const Bytes& raw) {
  uLongf n = compressBound(raw.size()) + 64;
  // gzip framing through deflateInit2 (windowBits 15 + 16).
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  Bytes out(n, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Bytes gunzip(const fs::path& p) {
  gzFile f = gzopen(p.c_str(), "rb");
  Bytes out;
  char buf[1 << 16];
  int got;
  while ((got = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(got));
  gzclose(f);
  return out;
}

// A load that does not come back within the limit is a hang (libhdf5 looped for an hour on one mutant before
// this existed): the watchdog names the target and the input kept on disk and aborts, so that the test fails in
// seconds instead of running into ctest's timeout with nothing said.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void arm(const std::string& what) {
    std::lock_guard<std::mutex> lock(m_);
    what_ = what;
    deadline_ = std::chrono::steady_clock::now() + limit_;
    armed_ = true;
    cv_.notify_all();
  }
  void disarm() {
    std::lock_guard<std::mutex> lock(m_);
    armed_ = false;
    cv_.notify_all();
  }

 private:
  void watch() {
    std::unique_lock<std::mutex> lock(m_);
    while (!stop_) {
      if (!armed_) {
        cv_.wait(lock);
      } else if (cv_.wait_until(lock, deadline_) == std::cv_status::timeout && armed_ &&
                 std::chrono::steady_clock::now() >= deadline_) {
        std::cerr << "fuzz watchdog: " << what_ << " did not finish loading within " << limit_.count()
                  << " s (a hang); aborting\n";
        std::abort();
      }
    }
  }
  std::chrono::seconds limit_;
  std::mutex m_;
  std::condition_variable cv_;
  bool armed_ = false, stop_ = false;
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  std::thread thread_;
};

size_t pick(std::mt19937_64& rng, size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng); }

// A few byte-level edits.
Bytes mutate_bytes(Bytes b, const std::vector<Bytes>& corpus, std::mt19937_64& rng) {
  static const std::vector<uint64_t> kInteresting = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0x80000000ULL,
                                                     0xffffffffULL, 0x7fffffffffffffffULL, 0xffffffffffffffffULL};
  const int edits = 1 + static_cast<int>(pick(rng, 8));
  for (int e = 0; e < edits; ++e) {
    const size_t n = b.size(), at = pick(rng, n + 1);
    switch (pick(rng, 8)) {
      case 0:  // flip a bit
        if (n) b[pick(rng, n)] ^= static_cast<char>(1u << pick(rng, 8));
        break;
      case 1:  // an interesting byte
        if (n) b[pick(rng, n)] = static_cast<char>(kInteresting[pick(rng, 5)]);
        break;
      case 2: {  // an interesting integer, little or big endian, 2/4/8 bytes
        const uint64_t v = kInteresting[pick(rng, kInteresting.size())];
        const size_t w = size_t{2} << pick(rng, 3);
        const bool big = pick(rng, 2);
        for (size_t i = 0; i < w && at + i < n; ++i)
          b[at + i] = static_cast<char>((v >> (8 * (big ? w - 1 - i : i))) & 0xff);
        break;
      }
      case 3: {  // insert random bytes
        Bytes ins(1 + pick(rng, 16), '\0');
        for (auto& c : ins) c = static_cast<char>(pick(rng, 256));
        b.insert(at, ins);
        break;
      }
      case 4:  // delete a range
        if (n) b.erase(at < n ? at : n - 1, 1 + pick(rng, 64));
        break;
      case 5:  // duplicate a range
        if (n) {
          const size_t from = pick(rng, n), len = std::min(n - from, 1 + pick(rng, 256));
          b.insert(at, b.substr(from, len));
        }
        break;
      case 6:  // truncate
        b.resize(pick(rng, n + 1));
        break;
      default: {  // splice a range of another corpus entry
        const Bytes& o = corpus[pick(rng, corpus.size())];
        if (!o.empty()) {
          const size_t from = pick(rng, o.size()), len = std::min(o.size() - from, 1 + pick(rng, 512));
          b.replace(at, std::min(len, n - std::min(at, n)), o.substr(from, len));
        }
      }
    }
  }
  return b;
}

// Text edits for YAML: hostile scalars in place of tokens, lines duplicated or dropped, then byte edits sometimes.
Bytes mutate_yaml(Bytes b, const std::vector<Bytes>& corpus, std::mt19937_64& rng) {
  static const std::vector<std::string> kScalars = {
      ".nan", ".inf", "-.inf", "-1", "0", "1e309", "-1e309", "99999999999999999999999", "4.9e-324", "''", "[]",
      "{}", "~", "*a", "&a x", "!!binary aGVsbG8=", "[*a, *a]", "{name: {name: x}}", "\"\\x00\"", "0x7fffffffffffffff",
      "-9223372036854775808", "1/2", "true", "[1, [2, [3]]]", "!<tag:yaml.org,2002:int> 3", "|\n  block", "? complex"};
  const int edits = 1 + static_cast<int>(pick(rng, 4));
  for (int e = 0; e < edits; ++e) {
    switch (pick(rng, 4)) {
      case 0:
      case 1: {  // replace a token (a run of [A-Za-z0-9_.-]) by a hostile scalar
        std::vector<std::pair<size_t, size_t>> tokens;
        for (size_t i = 0; i < b.size();) {
          if (std::isalnum(static_cast<unsigned char>(b[i])) || b[i] == '_' || b[i] == '.' || b[i] == '-') {
            size_t j = i;
            while (j < b.size() && (std::isalnum(static_cast<unsigned char>(b[j])) || b[j] == '_' || b[j] == '.' || b[j] == '-')) ++j;
            tokens.emplace_back(i, j - i);
            i = j;
          } else {
            ++i;
          }
        }
        if (!tokens.empty()) {
          const auto [at, len] = tokens[pick(rng, tokens.size())];
          b.replace(at, len, kScalars[pick(rng, kScalars.size())]);
        }
        break;
      }
      case 2: {  // duplicate or drop a line
        std::vector<size_t> starts{0};
        for (size_t i = 0; i < b.size(); ++i)
          if (b[i] == '\n') starts.push_back(i + 1);
        const size_t s = starts[pick(rng, starts.size())];
        const size_t end = b.find('\n', s);
        const Bytes line = b.substr(s, end == Bytes::npos ? Bytes::npos : end - s + 1);
        if (pick(rng, 2)) b.insert(s, line);
        else b.erase(s, line.size());
        break;
      }
      default:
        b = mutate_bytes(b, corpus, rng);
    }
  }
  return b;
}

struct Target {
  std::string name;
  std::vector<Bytes> corpus;
  int64_t mutants;
  std::function<Bytes(const Bytes&, const std::vector<Bytes>&, std::mt19937_64&)> mutate;
  // Loads the bytes (written to `path` first); returns normally when accepted, throws ConfigError when refused.
  std::function<void(const fs::path& path)> load;
  std::string extension;
};

int64_t scale() {
  const char* s = std::getenv("PSBENCH_FUZZ_SCALE");
  return s ? std::max<int64_t>(1, std::atoll(s)) : 1;
}

// Runs one target: its regression inputs (tests/fuzz/regressions/<target>/, sorted by name), its corpus, then its
// seeded mutants. Returns {accepted, refused}.
std::pair<int64_t, int64_t> run_target(const Target& t, const fs::path& work, Watchdog& watchdog) {
  const fs::path current = work / "fuzz_current" / (t.name + t.extension);
  std::vector<Bytes> inputs;
  std::vector<std::string> labels;
  const fs::path regress = fs::path(kSource) / "tests" / "fuzz" / "regressions" / t.name;
  if (fs::is_directory(regress)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(regress))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      // Large reproducers (a damaged copy of the 190 KiB results fixture) are kept gzipped as <name><ext>.gz.
      const std::string name = f.filename().string(), packed = t.extension + ".gz";
      const bool gzipped = name.size() > packed.size() && name.compare(name.size() - packed.size(), packed.size(), packed) == 0;
      inputs.push_back(gzipped ? gunzip(f) : read_bytes(f));
      labels.push_back("regression " + f.filename().string());
    }
  }
  for (size_t i = 0; i < t.corpus.size(); ++i) {
    inputs.push_back(t.corpus[i]);
    labels.push_back("corpus entry " + std::to_string(i));
  }
  std::mt19937_64 rng(0x5eed0000ULL + std::hash<std::string>{}(t.name) % 1000);
  const int64_t n = t.mutants * scale();
  for (int64_t i = 0; i < n; ++i) {
    inputs.push_back(t.mutate(t.corpus[pick(rng, t.corpus.size())], t.corpus, rng));
    labels.push_back("mutant " + std::to_string(i));
  }
  // For chasing a report of a checker that does not stop the run (Valgrind): PSBENCH_FUZZ_TRACE=1 names each
  // input on stderr before loading it, PSBENCH_FUZZ_INPUT=i loads input i alone (kept in fuzz_current/).
  // PSBENCH_FUZZ_KEEP=text keeps every input refused with a message containing text in fuzz_findings/: the
  // inputs a new check refuses, from which to pick a reproducer for tests/fuzz/regressions/.
  const bool trace = std::getenv("PSBENCH_FUZZ_TRACE") != nullptr;
  const char* only_input = std::getenv("PSBENCH_FUZZ_INPUT");
  const char* keep_refused = std::getenv("PSBENCH_FUZZ_KEEP");
  int64_t accepted = 0, refused = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (only_input && std::to_string(i) != only_input) continue;
    if (trace) std::cerr << "fuzz: " << t.name << " input " << i << " (" << labels[i] << ")" << std::endl;
    write_bytes(current, inputs[i]);
    watchdog.arm(t.name + " " + labels[i] + " (input kept in " + current.string() + ")");
    struct Disarm {
      Watchdog& w;
      ~Disarm() { w.disarm(); }
    } disarm{watchdog};
    try {
      t.load(current);
      ++accepted;
    } catch (const ConfigError& e) {
      ++refused;
      const std::string msg = e.what();
      if (keep_refused && msg.find(keep_refused) != std::string::npos) {
        write_bytes(work / "fuzz_findings" / (t.name + "-" + std::to_string(i) + t.extension), inputs[i]);
        std::cerr << "fuzz: kept " << t.name << " input " << i << ": " << msg << std::endl;
      }
      if (msg.find('\n') != std::string::npos || msg.find(current.filename().string()) == std::string::npos) {
        const fs::path keep = work / "fuzz_findings" / (t.name + "-" + std::to_string(i) + t.extension);
        write_bytes(keep, inputs[i]);
        FAIL_CHECK(t.name << " " << labels[i] << ": the message is not one line naming the file: " << msg
                          << " (input kept in " << keep << ")");
      }
    } catch (const std::exception& e) {
      const fs::path keep = work / "fuzz_findings" / (t.name + "-" + std::to_string(i) + t.extension);
      write_bytes(keep, inputs[i]);
      FAIL_CHECK(t.name << " " << labels[i] << ": not a ConfigError: " << e.what() << " (input kept in " << keep << ")");
    }
  }
  return {accepted, refused};
}

}  // namespace

// In ctest ("fuzz: Fuzzed loaders ..."): about 6,100 inputs at the default scale, well under a minute on one core.
// Its first run (hidden from ctest then) failed 166 mutants and hung on one; the root causes and their fixes are
// listed in README "Reliability", a reproducer of each in tests/fuzz/regressions/. Longer runs:
// PSBENCH_FUZZ_SCALE=5 build/tests/psbench_tests_fuzz "[fuzz]".
TEST_CASE("Fuzzed loaders accept or refuse with a one-line ConfigError naming the file and never crash",
          "[fuzz][reliability]") {
  const fs::path work = fs::path(testing::temp_dir("fuzz"));
  std::vector<Target> targets;

  // Experiment YAML: every experiment file of the repository.
  {
    Target t{"experiment_yaml", {}, 3000, mutate_yaml, {}, ".yaml"};
    for (const auto& e : fs::recursive_directory_iterator(fs::path(kSource) / "experiments"))
      if (e.path().extension() == ".yaml") t.corpus.push_back(read_bytes(e.path()));
    t.load = [](const fs::path& p) { (void)parse_experiment_text(read_bytes(p), p.string()); };
    targets.push_back(std::move(t));
  }
  // TorchScript sidecar YAML.
  {
    Target t{"torchscript_sidecar",
             {"kind: denoiser\nshape: [1, 28, 28]\nsigma_min: 0.002\nsigma_max: 80\nsigma_data: 0.5\n"
              "value_range: [-1, 1]\n",
              "kind: generator\nshape: [3, 64, 64]\nlatent_shape: [3, 64, 64]\nvalue_range: [0, 1]\n",
              "kind: consistency\nshape: [1, 28, 28]\nsigma_min: 0.002\nsigma_max: 80\nevaluations_per_call: 2\n"},
             1500, mutate_yaml, {}, ".yaml"};
    t.load = [](const fs::path& p) { (void)TorchScriptConventions::load(p.string()); };
    targets.push_back(std::move(t));
  }
  // gzip IDX images (the labels file kept valid): the first 20 test images, mutated inside the gzip stream
  // (then recompressed: the loader's own checks) or as gzip bytes (zlib's).
  {
    const fs::path root = "/usr/share/datasets/fashion-mnist";
    const Bytes images = gunzip(root / "t10k-images-idx3-ubyte.gz"), labels = gunzip(root / "t10k-labels-idx1-ubyte.gz");
    Bytes small_images = images.substr(0, 16 + 20 * 784), small_labels = labels.substr(0, 8 + 20);
    for (int i = 0; i < 4; ++i) small_images[4 + i] = small_labels[4 + i] = (i == 3 ? 20 : 0);  // count = 20
    const fs::path label_file = work / "labels-idx1-ubyte.gz";
    write_bytes(label_file, gzip(small_labels));
    Target t{"idx_images", {}, 300, {}, {}, ".gz"};
    t.corpus = {"R" + small_images};
    t.mutate = [](const Bytes& b, const std::vector<Bytes>& c, std::mt19937_64& rng) {
      const Bytes raw = b.substr(1);
      return pick(rng, 2) ? "R" + mutate_bytes(raw, c, rng) : "Z" + mutate_bytes(gzip(raw), c, rng);
    };
    t.load = [label_file](const fs::path& p) {
      Bytes b = read_bytes(p);
      const Bytes payload = b.empty() ? b : b.substr(1);
      write_bytes(p, !b.empty() && b[0] == 'R' ? gzip(payload) : payload);
      (void)read_fashion_mnist_files(p.string(), label_file.string());
    };
    targets.push_back(std::move(t));
  }
  // Image files (PNG) through the image-folder dataset.
  {
    const fs::path seeds = work / "png_seeds";
    fs::create_directories(seeds);
    write_png_grid((seeds / "grey.png").string(), {at::linspace(-1, 1, 64, at::kFloat).reshape({1, 8, 8})}, 1, 0);
    write_png_grid((seeds / "rgb.png").string(), {at::rand({3, 5, 6}, at::kFloat) * 2 - 1}, 1, 0);
    Target t{"image_png", {read_bytes(seeds / "grey.png"), read_bytes(seeds / "rgb.png")}, 600, mutate_bytes, {}, ".png"};
    t.load = [](const fs::path& p) {
      const fs::path dir = p.parent_path() / "image_folder";
      fs::remove_all(dir);
      fs::create_directories(dir);
      fs::copy_file(p, dir / p.filename());
      ImageFolderDataset ds(dir.string(), 8, 3);
      (void)ds.load(0);
    };
    targets.push_back(std::move(t));
  }
  // psbench model files (the shipped EDM denoiser; large, so few mutants).
  {
    Target t{"model_file", {read_bytes(fs::path(kSource) / "data" / "models" / "edm_fmnist.pt")}, 100, mutate_bytes, {}, ".pt"};
    t.load = [](const fs::path& p) { (void)nn::load_model(p.string()); };
    targets.push_back(std::move(t));
  }
  // TorchScript modules (the learned-operator fixtures).
  {
    Target t{"torchscript_module",
             {read_bytes(fs::path(kSource) / "tests" / "fixtures" / "learned_halve.pt"),
              read_bytes(fs::path(kSource) / "tests" / "fixtures" / "learned_softblur.pt")},
             300, mutate_bytes, {}, ".pt"};
    t.load = [](const fs::path& p) { (void)load_torchscript(p.string(), "operator", c10::Device(c10::kCPU)); };
    targets.push_back(std::move(t));
  }
  // HDF5 results read by report / evaluate / merge: what each reads of the file, then the report made of it.
  {
    Target t{"results_hdf5", {read_bytes(fs::path(kSource) / "tests" / "fixtures" / "report_fixture.h5")}, 2000,
             mutate_bytes, {}, ".h5"};
    t.load = [](const fs::path& p) {
      const Hdf5Store store(p.string(), "r");
      (void)store.file_attributes();
      (void)store.complete_keys();
      (void)markdown_report(store.read_all(), p.string());
    };
    targets.push_back(std::move(t));
  }

  Watchdog watchdog(std::chrono::seconds(20));
  // PSBENCH_FUZZ_TARGET=<name>[,<name>...] runs those targets alone (chasing one target's findings at a large
  // scale; ctest's fuzz_memcheck runs the parsers psbench links under Valgrind this way).
  std::set<std::string> only;
  if (const char* env = std::getenv("PSBENCH_FUZZ_TARGET")) {
    std::stringstream list(env);
    for (std::string name; std::getline(list, name, ',');) only.insert(name);
  }
  for (const auto& name : only) {
    const bool known = std::any_of(targets.begin(), targets.end(), [&](const Target& t) { return t.name == name; });
    INFO("PSBENCH_FUZZ_TARGET names " << name);
    REQUIRE(known);
  }
  for (const auto& t : targets) {
    if (!only.empty() && !only.count(t.name)) continue;
    INFO("target " << t.name);
    const auto start = std::chrono::steady_clock::now();
    const auto [accepted, refused] = run_target(t, work, watchdog);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    WARN(t.name << ": " << accepted << " inputs accepted, " << refused << " refused with a ConfigError, "
                << seconds << " s");
    CHECK(accepted + refused > 0);
  }
}
