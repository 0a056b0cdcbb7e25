// The start-up rescan: brings the tree index in line with the disk after the daemon was not
// running, so that what changed meanwhile is known. A path that appeared or changed is a change
// made here (its version bumped); a path that is gone was deleted here, and gets a tombstone,
// when the directory that held it was changed after we stopped (a deletion changes its
// directory's mtime; a file that merely never became durable before a power loss does not).
// These changes are dated the moment we stopped, the earliest they can have been: a concurrent
// change made elsewhere since then wins over them. On a first run (no index yet) what is there
// gets no version: "no change seen yet", as on every node that holds the same bytes.
#pragma once
#include <cstdint>
#include <string>

#include "sync/paths.hpp"
#include "sync/tree_index.hpp"

namespace makuo {

struct RescanStats {
  uint64_t entries = 0;    // on disk
  uint64_t added = 0;      // new since we stopped
  uint64_t changed = 0;    // another content version (or type) since we stopped
  uint64_t deleted = 0;    // gone, tombstoned
  uint64_t forgotten = 0;  // gone without a sign of a deletion: dropped from the index only
};

// down_since_ns: when this node stopped (0: unknown; nothing is then taken for a deletion).
RescanStats rescan(int basefd, const std::string& base_path, const Excludes* excludes,
                   TreeIndex& index, const std::string& self, int64_t down_since_ns);

}  // namespace makuo
