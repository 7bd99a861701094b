#pragma once
// SHA-256 (FIPS 180-4) of files and strings, recorded as provenance of every model file psbench reads.
#include <string>

namespace psbench {

std::string sha256_hex(const std::string& bytes);
// Hex digest of a file's contents; throws std::runtime_error when the file cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace psbench
