// Atomic, durable commits in batches: verified temporaries are flushed with one syncfs() per
// batch (not one fsync per file) and then renamed over their targets. With a worker thread the
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
  // Last writer wins: when the target's mtime is later than this at rename time, the
  // temporary is dropped and err is kNewerHere (a local write raced with the push), or
  // kBeingWritten while a writer has it open through the mount. When it is the same mtime
  // and the target is no longer what was judged, err is kJudgeAgain (the tie-break by node
  // name and content needs the index, which this thread does not touch).
  int64_t unless_newer_than = INT64_MAX;
  FileStamp judged;
  // The directory keeps its mtime: under last writer wins a directory's mtime is replicated
  // state, not a side effect of receiving (the push carries the directory's own mtime).
  bool keep_dir_mtime = false;
  // A conflict: the version being replaced is kept as keep_as (a hard link in dir) if it is
  // still keep_version at rename time; kept tells whether it was.
  std::string keep_as;
  wire::Version keep_version;
  bool kept = false;
};

class Committer {
 public:
  static constexpr int kNewerHere = -1;
  static constexpr int kBeingWritten = -2;  // open for writing through the mount: it is newer
  static constexpr int kJudgeAgain = -3;    // a tie with a version that came after the judgement
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
