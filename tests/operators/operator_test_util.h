#pragma once
// Helpers of the operator tests: tasks built by name through the registry, and the text fixtures of
// tools/make_operator_fixtures.py.
#include <ATen/ATen.h>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/rng.h"
#include "operators/operator.h"

namespace psbench::test {

inline std::unique_ptr<Task> make_task(const std::string& name, std::map<std::string, OptionValue> given = {}) {
  const auto& e = TaskRegistry::instance().get(name, "task");
  return e.make(resolve_options(name, e.options, std::move(given)));
}

inline MeasurementModel build_task(const std::string& name, const Shape& shape, uint64_t seed = 1,
                                   std::map<std::string, OptionValue> given = {}) {
  auto gen = make_generator(seed);
  return make_task(name, std::move(given))->build(shape, gen);
}

inline std::string fixture_path(const std::string& file) {
  return std::string(PSBENCH_SOURCE_DIR) + "/tests/fixtures/" + file;
}

// Records "NAME NDIM D0 .. Dn-1 values..." as float64 tensors; '#' lines are comments.
inline std::map<std::string, at::Tensor> read_fixture(const std::string& file) {
  std::ifstream in(fixture_path(file));
  if (!in) throw std::runtime_error(fixture_path(file) + ": cannot open (run tools/make_operator_fixtures.py)");
  std::string text, line;
  while (std::getline(in, line))
    if (line.empty() || line[0] != '#') text += line + "\n";
  std::istringstream ss(text);
  std::map<std::string, at::Tensor> out;
  std::string name;
  while (ss >> name) {
    int64_t ndim = 0;
    ss >> ndim;
    std::vector<int64_t> dims(static_cast<size_t>(ndim));
    for (auto& d : dims) ss >> d;
    int64_t n = 1;
    for (auto d : dims) n *= d;
    auto t = at::empty({n}, at::kDouble);
    auto a = t.accessor<double, 1>();
    for (int64_t i = 0; i < n; ++i)
      if (!(ss >> a[i])) throw std::runtime_error(file + ": record " + name + " is truncated");
    out[name] = t.reshape(dims);
  }
  return out;
}

inline double dot_all(const at::Tensor& a, const at::Tensor& b) { return (a * b).sum().item<double>(); }

}  // namespace psbench::test
