// Atomic, durable commits in batches: verified temporaries are flushed with one syncfs() per
// batch (not one fsync per file) and then renamed over their targets.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "sync/fsops.hpp"
#include "sync/transport.hpp"

namespace makuo {

struct PendingCommit {
  Fd dir;           // the target's directory
  std::string tmp;  // verified temporary in dir
  std::string leaf;
  std::function<void(int err)> done;
};

class Committer {
 public:
  explicit Committer(int basefd, Duration max_delay = 5ms, size_t max_batch = 256)
      : basefd_(basefd), max_delay_(max_delay), max_batch_(max_batch) {}
  void add(PendingCommit c, TimePoint now);
  bool due(TimePoint now) const {
    return !batch_.empty() && (batch_.size() >= max_batch_ || now - oldest_ >= max_delay_);
  }
  TimePoint deadline() const { return batch_.empty() ? TimePoint::max() : oldest_ + max_delay_; }
  void flush();
  size_t pending() const { return batch_.size(); }
  uint64_t syncs() const { return syncs_; }

 private:
  int basefd_;
  Duration max_delay_;
  size_t max_batch_;
  std::vector<PendingCommit> batch_;
  TimePoint oldest_{};
  uint64_t syncs_ = 0;
};

}  // namespace makuo
