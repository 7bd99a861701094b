#pragma once
#include <string>
#include <vector>

#include "store/result_store.h"

namespace psbench {

// Markdown table: a row per cell; columns for the swept options, each metric as mean ± standard
// error over measurements, NFE per measurement (warm-up + chain) and seconds.
std::string markdown_report(const std::vector<CellRecord>& cells);
// The same of the cells read from `file`: their values are outside input, so one the report cannot use (a status
// it does not know, an index that is not a number, a configuration that is not YAML) is a ConfigError naming the
// file rather than an internal error.
std::string markdown_report(const std::vector<CellRecord>& cells, const std::string& file);

}  // namespace psbench
