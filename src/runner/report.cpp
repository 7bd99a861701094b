#include "runner/report.h"

#include "core/errors.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "runner/experiment.h"
#include "store/schema.h"

namespace psbench {

namespace {

namespace sc = schema;

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string mean_se(const at::Tensor& t) {
  auto v = t.to(at::kDouble);
  const int64_t n = v.numel();
  if (n == 0) return "—";
  const double mean = v.mean().item<double>();
  if (!std::isfinite(mean)) return mean > 0 ? "+inf" : (mean < 0 ? "-inf" : "nan");
  char buf[64];
  if (n < 2) {
    std::snprintf(buf, sizeof buf, "%.4g", mean);
  } else {
    const double se = v.std().item<double>() / std::sqrt(static_cast<double>(n));
    std::snprintf(buf, sizeof buf, "%.4g ± %.2g", mean, se);
  }
  return buf;
}

std::string fmt(double x, const char* f) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

const at::Tensor* find(const CellRecord& c, const std::string& k) {
  auto it = c.arrays.find(k);
  return it == c.arrays.end() ? nullptr : &it->second;
}

}  // namespace

std::string markdown_report(const std::vector<CellRecord>& stored) {
  if (stored.empty()) return "(no complete cells)\n";
  // Rows in experiment order (the store lists cells by key).
  std::vector<CellRecord> cells = stored;
  auto index_of = [](const CellRecord& c) {
    return c.has_attr(sc::kCellIndex) ? std::stoll(c.attr(sc::kCellIndex)) : static_cast<long long>(1) << 40;
  };
  std::stable_sort(cells.begin(), cells.end(),
                   [&](const CellRecord& a, const CellRecord& b) { return index_of(a) < index_of(b); });
  // Columns: config keys whose value differs between cells, plus the sampler name.
  std::vector<std::map<std::string, std::string>> configs;
  std::map<std::string, std::set<std::string>> distinct;
  std::vector<std::string> order;
  for (const auto& c : cells) {
    std::map<std::string, std::string> flat;
    for (const auto& [k, v] : flatten_config(c.attr(sc::kConfig))) {
      flat[k] = v;
      if (!distinct.count(k)) order.push_back(k);
      distinct[k].insert(v);
    }
    configs.push_back(std::move(flat));
  }
  std::vector<std::string> columns;
  for (const auto& k : order)
    if (k == "sampler.name" || (distinct[k].size() > 1 && k != "experiment")) columns.push_back(k);
  // Cells missing a key (other component) show "—"; name columns always come first within a section.
  std::set<std::string> metric_names;
  bool any_status = false, any_diverged_chain = false, any_device = false;
  for (const auto& c : cells) {
    for (const auto& [k, t] : c.arrays)
      if (starts_with(k, sc::kMetricsGroup)) metric_names.insert(k.substr(std::strlen(sc::kMetricsGroup)));
    if (sc::parse_status(c.attr(sc::kStatus)) != sc::CellStatus::Ok) any_status = true;
    if (auto d = find(c, sc::kChainsDiverged); d && d->sum().item<int64_t>() > 0) any_diverged_chain = true;
    if (find(c, sc::kResourcesPeakDeviceBytes)) any_device = true;
  }
  std::map<std::string, std::string> arrows;
  for (const auto& c : cells)
    for (const auto& m : metric_names)
      if (c.has_attr(sc::kMetricDirectionPrefix + m)) {
        const auto& d = c.attr(sc::kMetricDirectionPrefix + m);
        arrows[m] = d == sc::kLowerIsBetter    ? " ↓"
                    : d == sc::kHigherIsBetter ? " ↑"
                                               : " →" + d.substr(std::strlen(sc::kTargetPrefix));
      }

  std::string header = "| cell |", rule = "|---|";
  for (const auto& k : columns) { header += " " + k + " |"; rule += "---|"; }
  for (const auto& m : metric_names) { header += " " + m + arrows[m] + " |"; rule += "---|"; }
  header += " NFE warm-up | NFE chain | warm-up s | sampling s | scoring s | peak RSS MiB |";
  rule += "---|---|---|---|---|---|";
  if (any_device) { header += " peak device MiB |"; rule += "---|"; }
  if (any_diverged_chain) { header += " diverged chains |"; rule += "---|"; }
  if (any_status) { header += " status |"; rule += "---|"; }
  std::string out = header + "\n" + rule + "\n";
  std::vector<std::string> warnings;

  for (size_t i = 0; i < cells.size(); ++i) {
    const auto& c = cells[i];
    std::string row = "| " + c.key.substr(0, 8) + " |";
    for (const auto& k : columns) {
      auto it = configs[i].find(k);
      row += " " + (it == configs[i].end() ? std::string("—") : it->second) + " |";
    }
    for (const auto& m : metric_names) {
      const auto* t = find(c, sc::kMetricsGroup + m);
      std::string cell = t ? mean_se(*t) : std::string("—");
      // Per-set metrics have one value per cell; KID carries its standard deviation over subsets.
      if (const auto* sp = find(c, sc::kMetricSpreadGroup + m); sp && t && t->numel() == 1)
        cell += " (sd " + fmt(sp->item<double>(), "%.2g") + ")";
      if (c.has_attr(sc::kWarningPrefix + m)) {
        cell += " ⚠";
        warnings.push_back(c.key.substr(0, 8) + ", " + m + ": " + c.attr(sc::kWarningPrefix + m));
      }
      row += " " + cell + " |";
    }
    auto nfe = [&](const char* a, const char* b) {
      const auto* ta = find(c, a);
      const auto* tb = find(c, b);
      if (!ta || !tb) return std::string("—");
      double fb = tb->to(at::kDouble).mean().item<double>(), f = ta->to(at::kDouble).mean().item<double>();
      return fmt(fb, "%.0f") + (f > 0 ? " (+" + fmt(f, "%.0f") + " fwd)" : "");
    };
    row += " " + nfe(sc::kNfeWarmupForward, sc::kNfeWarmupForwardBackward) + " |";
    row += " " + nfe(sc::kNfeChainForward, sc::kNfeChainForwardBackward) + " |";
    const auto* ws = find(c, sc::kTimeWarmupSeconds);
    const auto* ss = find(c, sc::kTimeSamplingSeconds);
    row += " " + (ws ? fmt(ws->mean().item<double>(), "%.3g") : "—") + " |";
    row += " " + (ss ? fmt(ss->mean().item<double>(), "%.3g") : "—") + " |";
    // Per cell: scoring time (all measurements) and the process's peak resident memory during the cell.
    const auto* sc_t = find(c, sc::kResourcesScoringSeconds);
    const auto* rss = find(c, sc::kResourcesPeakRssBytes);
    row += " " + (sc_t ? fmt(sc_t->item<double>(), "%.3g") : "—") + " |";
    row += " " + (rss ? fmt(rss->to(at::kDouble).item<double>() / (1 << 20), "%.0f") : "—") + " |";
    if (any_device) {
      const auto* dev = find(c, sc::kResourcesPeakDeviceBytes);
      row += " " + (dev ? fmt(dev->to(at::kDouble).item<double>() / (1 << 20), "%.0f") : "—") + " |";
    }
    if (any_diverged_chain) {
      const auto* d = find(c, sc::kChainsDiverged);
      row += " " + (d ? std::to_string(d->sum().item<int64_t>()) + "/" +
                            std::to_string(std::stoll(c.attributes.count(sc::kChains) ? c.attr(sc::kChains) : "0") * d->numel())
                      : std::string("—")) + " |";
    }
    if (any_status) {
      std::string st = c.attr(sc::kStatus);
      if (sc::parse_status(st) != sc::CellStatus::Ok && c.has_attr(sc::kMessage) && !c.attr(sc::kMessage).empty())
        st += ": " + c.attr(sc::kMessage);
      row += " " + st + " |";
    }
    out += row + "\n";
  }
  out += "\nNFE: network (or exact-score) evaluations per measurement with a backward pass; forward-only "
         "evaluations in parentheses. Metrics: mean ± standard error over measurements (per-sample metrics are first "
         "averaged over the K samples of a measurement; `@posterior_mean` scores the mean of the K samples; "
         "`@best_of_k` picks the best sample against x*); a diverged cell's metrics are over the measurements that "
         "kept samples (its status says how many lost all). Per-set metrics (Fréchet distance, KID) have one value "
         "per cell; sd = standard deviation over KID subsets. →v: target value v. Times: warm-up and sampling "
         "per measurement (mean), scoring per cell; peak RSS: the process's peak resident memory during the cell "
         "(models and libraries included); peak device (CUDA runs): the most bytes LibTorch's CUDA allocator had handed "
         "out during the cell, summed over devices.\n";
  if (metric_names.count("ess_bulk") || metric_names.count("ess_tail") || metric_names.count("rhat") ||
      metric_names.count("iat"))
    out += "MCMC diagnostics (ess_bulk, ess_tail, rhat, iat): per measurement the worst over the likelihood potential "
           "and fixed random projections of the chains (smallest ESS, largest R-hat and autocorrelation time).\n";
  std::set<std::string> networks;
  for (const auto& c : cells)
    for (const auto& [k, v] : c.attributes)
      if (starts_with(k, sc::kMetricNetworkPrefix)) {
        const std::string label = k.substr(std::strlen(sc::kMetricNetworkPrefix));
        if (c.has_attr(sc::kMetricWeightsSha256Prefix + label))
          networks.insert(v + " (" + c.attr(sc::kMetricWeightsPrefix + label) + ", sha256 " +
                          c.attr(sc::kMetricWeightsSha256Prefix + label).substr(0, 16) + "…)");
      }
  for (const auto& n : networks) out += "Metric network: " + n + "\n";
  if (!warnings.empty()) {
    out += "\nWarnings:\n";
    for (const auto& w : warnings) out += "- ⚠ " + w + "\n";
  }
  // Metrics a cell could not compute (— in its column), e.g. chain diagnostics of a one-draw-per-chain sampler.
  // Lines are "<metric>: <reason>"; metrics of a cell with the same reason share a line.
  std::string not_computed;
  for (const auto& c : cells) {
    if (!c.has_attr(sc::kMetricsSkipped)) continue;
    const std::string& all = c.attr(sc::kMetricsSkipped);
    std::vector<std::pair<std::string, std::string>> by_reason;  // reason -> metrics, in order of appearance
    for (size_t start = 0; start < all.size();) {
      const size_t end = std::min(all.find('\n', start), all.size());
      const std::string line = all.substr(start, end - start);
      start = end + 1;
      const size_t colon = line.find(": ");
      const std::string metric = colon == std::string::npos ? line : line.substr(0, colon);
      const std::string reason = colon == std::string::npos ? "" : line.substr(colon + 2);
      auto it = std::find_if(by_reason.begin(), by_reason.end(), [&](const auto& r) { return r.first == reason; });
      if (it == by_reason.end()) by_reason.push_back({reason, metric});
      else it->second += ", " + metric;
    }
    for (const auto& [reason, names] : by_reason)
      not_computed += "- " + c.key.substr(0, 8) + ", " + names + (reason.empty() ? "" : ": " + reason) + "\n";
  }
  if (!not_computed.empty()) out += "\nMetrics not computed:\n" + not_computed;
  return out;
}

std::string markdown_report(const std::vector<CellRecord>& cells, const std::string& file) {
  try {
    return markdown_report(cells);
  } catch (const ConfigError& e) {
    throw ConfigError(file + ": " + e.what());
  } catch (const std::exception& e) {
    throw ConfigError(file + ": cannot report its cells: " + first_line(e.what()));
  }
}

}  // namespace psbench
