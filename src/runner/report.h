#pragma once
#include <string>
#include <vector>

#include "store/result_store.h"

namespace psbench {

// Markdown table: a row per cell; columns for the swept options, each metric as mean ± standard
// error over measurements, NFE per measurement (warm-up + chain) and seconds.
std::string markdown_report(const std::vector<CellRecord>& cells);

}  // namespace psbench
