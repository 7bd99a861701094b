// Precompiled header of psbench_core: the heavy, stable third-party headers only.
#pragma once
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
