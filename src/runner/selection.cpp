#include "runner/selection.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "core/errors.h"
#include "core/rng.h"

namespace psbench {
namespace {

// The text a cell has for FIELD, or nothing when the cell has no such field (an option of another sampler).
std::optional<std::string> field_text(const CellSpec& s, const std::string& field) {
  if (field == "key") return s.key();
  if (field == "seed") return std::to_string(s.seed);
  if (field == "measurements") return std::to_string(s.measurements);
  if (field == "samples_per_measurement") return std::to_string(s.samples_per_measurement);
  if (field == "nfe_budget") return std::to_string(s.nfe_budget);
  const std::map<std::string, const Options*> sections = {
      {"task", &s.task}, {"dataset", &s.dataset}, {"prior", &s.prior}, {"sampler", &s.sampler}};
  const auto dot = field.find('.');
  auto it = sections.find(field.substr(0, dot));
  if (it == sections.end()) return std::nullopt;
  if (dot == std::string::npos) return it->second->component();
  const auto& values = it->second->values();
  auto v = values.find(field.substr(dot + 1));
  if (v == values.end()) return std::nullopt;
  return format_value(v->second);
}

std::optional<double> as_number(const std::string& t) {
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(t.c_str(), &end);
  if (*end != '\0' || errno == ERANGE) return std::nullopt;
  return d;
}

bool same_value(const std::string& stored, const std::string& wanted) {
  if (stored == wanted) return true;
  auto a = as_number(stored), b = as_number(wanted);
  return a && b && *a == *b;
}

}  // namespace

void parse_shard(const std::string& text, CellSelection& sel) {
  long long i = 0, n = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%lld/%lld%c", &i, &n, &tail) != 2 || n < 1 || i < 1 || i > n)
    throw ConfigError("run: --shard must be i/N with 1 <= i <= N, got '" + text + "'");
  sel.shard = i;
  sel.num_shards = n;
}

std::vector<size_t> select_cells(const Experiment& ex, const CellSelection& sel) {
  // FIELD -> accepted values, in the order given.
  std::map<std::string, std::vector<std::string>> wanted;
  for (const auto& item : sel.only) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw ConfigError("run: --only must be FIELD=VALUE (e.g. sampler=dps, task.sigma_y=0.1), got '" + item + "'");
    wanted[item.substr(0, eq)].push_back(item.substr(eq + 1));
  }
  for (const auto& [field, values] : wanted) {
    bool any = false;
    for (const auto& c : ex.cells) any = any || field_text(c, field).has_value();
    if (!any)
      throw ConfigError("run: --only " + field + "=" + values.front() + ": no cell of " + ex.path +
                       " has a field '" + field + "' (fields: task, dataset, prior, sampler, SECTION.OPTION, seed, "
                       "measurements, samples_per_measurement, nfe_budget, key)");
  }
  std::vector<size_t> out;
  for (size_t j = 0; j < ex.cells.size(); ++j) {
    if (static_cast<int64_t>(j % static_cast<size_t>(sel.num_shards)) + 1 != sel.shard) continue;
    bool keep = true;
    for (const auto& [field, values] : wanted) {
      auto t = field_text(ex.cells[j], field);
      bool match = false;
      for (const auto& v : values) match = match || (t && same_value(*t, v));
      keep = keep && match;
    }
    if (keep) out.push_back(j);
  }
  if (out.empty() && !sel.only.empty()) {
    std::string f;
    for (const auto& item : sel.only) f += " --only " + item;
    throw ConfigError("run:" + f + " selects no cell of " + ex.path +
                     (sel.num_shards > 1 ? " in shard " + std::to_string(sel.shard) + "/" + std::to_string(sel.num_shards) : ""));
  }
  return out;
}

std::vector<std::vector<std::string>> swept_values(const Experiment& ex) {
  // Every field any cell has, in a stable order: the top-level numbers, then each section's name and options.
  std::vector<std::string> fields = {"seed", "measurements", "samples_per_measurement", "nfe_budget"};
  std::set<std::string> seen(fields.begin(), fields.end());
  for (const auto& c : ex.cells)
    for (const auto& [section, o] : std::vector<std::pair<std::string, const Options*>>{
             {"task", &c.task}, {"dataset", &c.dataset}, {"prior", &c.prior}, {"sampler", &c.sampler}}) {
      if (seen.insert(section).second) fields.push_back(section);
      for (const auto& [k, v] : o->values())
        if (seen.insert(section + "." + k).second) fields.push_back(section + "." + k);
    }
  std::vector<std::string> varying;
  for (const auto& f : fields) {
    std::optional<std::string> first;
    bool differs = false;
    for (const auto& c : ex.cells) {
      auto t = field_text(c, f);
      if (!t) continue;
      if (!first) first = t;
      else differs = differs || !same_value(*first, *t);
    }
    if (differs) varying.push_back(f);
  }
  std::vector<std::vector<std::string>> out;
  for (const auto& c : ex.cells) {
    std::vector<std::string> row;
    for (const auto& f : varying)
      if (auto t = field_text(c, f)) row.push_back(f + "=" + *t);
    out.push_back(std::move(row));
  }
  return out;
}

std::string experiment_hash(const Experiment& ex) {
  std::string all;
  for (const auto& c : ex.cells) all += c.canonical() + "\n";
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash_string(all)));
  return buf;
}

}  // namespace psbench
