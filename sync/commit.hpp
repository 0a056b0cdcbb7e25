// Atomic, durable commits in batches: verified temporaries are flushed with one syncfs() per
// file system per batch (not one fsync per file), renamed over their targets, and the
// directories renamed into are fsynced before the results are reported. With a worker thread the
// flush never blocks the event loop (heartbeats and other pushes go on); results come back
// through collect() on the caller's thread.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sync/fsops.hpp"
#include "sync/transport.hpp"

namespace makuo {

struct PendingCommit {
  Fd dir;           // the target's directory
  std::string tmp;  // verified temporary in dir
  std::string leaf;
  // Runs on the thread that calls collect(), with err and kept set; after kJudgeAgain the
  // temporary is still there and the callback may add the commit again.
  std::function<void(PendingCommit&)> done;
  int err = 0;
  // Automatic pushes and catch-up: the target must still hold what the receiver judged
  // (judged) when it is replaced. A write through the mount that has it open makes err
  // kBeingWritten (its close is recorded and pushed); anything else that changed it since (a
  // local write, another push's commit) makes err kJudgeAgain, the temporary stays, and the
  // receiver judges the new state (which needs the index, which this thread does not touch).
  bool check_judged = false;
  FileStamp judged;
  // The directory keeps its mtime: it is replicated state, not a side effect of receiving (the
  // push carries the directory's own mtime).
  bool keep_dir_mtime = false;
  // A conflict: the version being replaced is kept as keep_as (a hard link in dir) if the
  // target still holds what was judged at rename time; kept tells whether it was.
  std::string keep_as;
  bool kept = false;
};

class Committer {
 public:
  static constexpr int kBeingWritten = -2;  // open for writing through the mount
  static constexpr int kJudgeAgain = -3;    // the target changed since it was judged
  // threaded: flush in a worker thread; wake is called (from it) when results are ready.
  Committer(int basefd, bool threaded, std::function<void()> wake = {});
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  void add(PendingCommit c, TimePoint now);
  bool due(TimePoint now) const {
    return !batch_.empty() && (batch_.size() >= kMaxBatch || now - oldest_ >= kMaxDelay);
  }
  TimePoint deadline() const { return batch_.empty() ? TimePoint::max() : oldest_ + kMaxDelay; }
  // Starts (threaded) or performs the flush of the current batch.
  void flush();
  // Runs the callbacks of finished commits; returns how many.
  size_t collect();
  size_t pending() const { return batch_.size(); }
  uint64_t syncs() const { return syncs_; }
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

  static constexpr Duration kMaxDelay = 5ms;
  static constexpr size_t kMaxBatch = 256;

 private:
  void run(std::vector<PendingCommit>& batch);
  void worker();

  int basefd_;
  bool threaded_;
  std::function<void()> wake_;
  std::vector<PendingCommit> batch_;
  TimePoint oldest_{};
  uint64_t syncs_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<PendingCommit>> jobs_;
  std::vector<PendingCommit> finished_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace makuo
