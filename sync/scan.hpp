// The sender's view of what to push: walks a path beneath the base directory (never following
// symlinks) into manifest entries, directories after their contents as makuosan orders them.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "sync/paths.hpp"
#include "sync/wire.hpp"

namespace makuo {

struct ScanOptions {
  std::string root;  // "" = the base directory itself (not sent, only its contents)
  bool recursive = false;
  bool with_hash = false;              // check sessions: regular files only, with content hash
  std::optional<uid_t> owner_only;     // -O: only files owned by this uid
  std::string base_path;               // for exclude matching
  const Excludes* excludes = nullptr;  // applies below root, never to root itself
};

struct ScanResult {
  std::vector<wire::Entry> entries;
  std::vector<std::string> errors;  // "error: ..." console lines
  std::vector<std::string> skips;   // "skip: ..." console lines
  bool root_missing = false;        // root does not exist (sync turns that into a delete)
};

ScanResult scan(int basefd, const ScanOptions& opt);

}  // namespace makuo
