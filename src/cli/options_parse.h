#pragma once
// Small helper around Boost.Program_options shared by the subcommands.
#include <boost/program_options.hpp>

#include <string>
#include <vector>

#include "cli/command.h"

namespace psbench {

inline boost::program_options::variables_map parse_command_line(
    const std::vector<std::string>& args, boost::program_options::options_description& desc,
    const boost::program_options::positional_options_description* pos) {
  namespace po = boost::program_options;
  po::variables_map vm;
  try {
    auto parser = po::command_line_parser(args).options(desc);
    if (pos) parser.positional(*pos);
    po::store(parser.run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return vm;
}

}  // namespace psbench
