#pragma once
// Command-line options shared by the `psbench train KIND` commands (defined in cli/commands/train.cpp;
// the training itself is in nn/).
#include <boost/program_options/options_description.hpp>

#include <string>
#include <vector>

#include "nn/training.h"

namespace psbench {

// Adds the common options to `desc`, bound to `s`; validate_train_settings checks them after parsing
// (UsageError on a bad value), fills the default checkpoint path and records the command line
// ("psbench train KIND ARGS...") for the model's metadata.
void add_train_options(boost::program_options::options_description& desc, nn::TrainSettings& s);
void validate_train_settings(nn::TrainSettings& s, const std::string& kind, const std::vector<std::string>& args);

}  // namespace psbench
