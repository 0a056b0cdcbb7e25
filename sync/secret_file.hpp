// Files that hold a secret (the cluster key, the console password): read through one descriptor
// that was checked to be a regular file no one but its owner can read.
#pragma once
#include <string>
#include <string_view>

namespace makuo {

// Up to max_bytes of the file at path. Throws std::runtime_error with a message for the
// operator that names it as what ("key file", "password file"): missing (with missing_hint
// after the error), not a regular file, readable by group or others, or longer than max_bytes.
std::string read_secret_file(const std::string& path, std::string_view what, size_t max_bytes,
                             std::string_view missing_hint = {});

}  // namespace makuo
