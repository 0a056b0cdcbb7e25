// Coalesces recorded changes into pushes (state is replicated, not operations): a change names a
// path, and what is sent is what that path is at push time, so a burst of writes to one file is one
// send and an editor's write-temp-then-rename is a send of the final content. Renames keep a
// hint of their source so that receivers holding it can rename instead of receiving content.
// Sans-I/O: fed records and times, asked what to push.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "state/journal.hpp"
#include "sync/transport.hpp"

namespace makuo {

struct Change {
  std::string path;
  std::string from;      // renamed from here (a hint a receiver verifies before using it)
  bool subtree = false;  // everything below path may have changed too
  bool operator==(const Change&) const = default;
};

class ChangeQueue {
 public:
  // quiet: push once no record came for this long; max_delay: push at the latest this long
  // after the oldest pending record, however busy the writers are.
  explicit ChangeQueue(Duration quiet = 50ms, Duration max_delay = 500ms);

  void add(const journal::Record& r, TimePoint now);
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  // When the pending changes are due (TimePoint::max() when there are none).
  TimePoint due() const;
  // Everything pending, renamed paths first, then in the order they first changed.
  std::vector<Change> take();

 private:
  struct Item {
    std::string from;
    bool subtree = false;
    uint64_t seq = 0;
  };
  void touch(const std::string& path, bool subtree);
  void moved(const std::string& from, const std::string& to);

  Duration quiet_, max_delay_;
  std::map<std::string, Item> items_;
  uint64_t seq_ = 0;
  TimePoint first_{}, last_{};
};

}  // namespace makuo
