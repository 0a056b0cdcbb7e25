// Tombstones: which paths were deleted, and when, kept for a while (default 7 days) so that a
// node that was away when a deletion happened has it applied when it comes back (catch-up),
// instead of bringing the file back. Stored in the state directory, rewritten atomically.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sync/wire.hpp"

namespace makuo {

class Tombstones {
 public:
  // Kept in file name in directory dirfd (which stays usable after a chroot); keep_ns: how long.
  Tombstones(int dirfd, std::string name, int64_t keep_ns);
  // 0 or errno (a missing file is an empty set).
  int load();
  struct Tomb {
    std::string path;
    int64_t when_ns = 0;
    std::optional<wire::Version> base;  // the version that was deleted, when known
  };
  // path was deleted at when_ns (realtime); a later deletion time wins.
  void add(const std::string& path, int64_t when_ns,
           std::optional<wire::Version> base = std::nullopt);
  // path exists again.
  void erase(const std::string& path);
  // When path was deleted (0: no tombstone).
  int64_t when(const std::string& path) const {
    auto it = map_.find(path);
    return it == map_.end() ? 0 : it->second.when_ns;
  }
  // Live tombstones, deepest paths first (a directory after what was in it).
  std::vector<Tomb> list(int64_t now_ns) const;
  // Writes them if they changed since the last save (expired ones dropped). 0 or errno.
  int save(int64_t now_ns);
  size_t size() const { return map_.size(); }
  int64_t keep_ns() const { return keep_ns_; }

 private:
  int dirfd_;
  std::string name_;
  int64_t keep_ns_;
  struct Value {
    int64_t when_ns = 0;
    std::optional<wire::Version> base;
  };
  std::map<std::string, Value> map_;
  bool dirty_ = false;
};

}  // namespace makuo
