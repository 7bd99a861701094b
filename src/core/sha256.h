#pragma once
// SHA-256 (FIPS 180-4) of bytes or of a file, as 64 lower-case hex characters: the identity of model
// and weight files recorded with every result.
#include <string>

namespace psbench {

std::string sha256_hex(const std::string& bytes);
// Throws ConfigError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace psbench
