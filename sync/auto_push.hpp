// Propagation of recorded changes: reads the change journal (written by makuofs and by the
// inotify watcher), coalesces it (ChangeQueue), and pushes the current state of the changed
// paths to every member in one session at a time. The journal's cursor moves only once a push
// finished, so a crash anywhere re-sends rather than loses. Our own commits of received files
// are remembered briefly so that a change source that sees them (inotify, or a mount over the
// base) does not send them back.
#pragma once
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "state/journal.hpp"
#include "sync/change_queue.hpp"
#include "sync/engine.hpp"
#include "sync/hybrid_clock.hpp"
#include "sync/paths.hpp"
#include "sync/scan.hpp"
#include "sync/tree_index.hpp"

namespace makuo {

struct AutoPushConfig {
  int basefd = -1;
  std::string base_path;
  const Excludes* excludes = nullptr;
  Duration quiet = 50ms;
  Duration max_delay = 500ms;
  Duration settle = 1500ms;  // after start-up, membership fills in before the first push
  // Wait for pushes we are receiving to finish first (when a change source sees our own
  // writes: inotify), so that a half-received tree is never taken for a local change.
  bool hold_while_receiving = false;
  // Every change pushed gets its version here (bumped with clock): the index records it,
  // deletions as tombstones.
  TreeIndex* index = nullptr;
  HybridClock* clock = nullptr;
  std::string self;  // this node's name
};

struct AutoPushStats {
  uint64_t records = 0, pushes = 0, entries = 0, echoes = 0, failed_pushes = 0;
  uint64_t held = 0;  // times a file was held back because it was still open for writing
};

class AutoPush {
 public:
  AutoPush(AutoPushConfig cfg, Engine& engine, journal::Reader& reader, TimePoint now);
  // Reads what was recorded, pushes what is due; returns when it wants to run again.
  TimePoint run(TimePoint now);
  // This node's receiver changed path: what it is now is not a local change.
  void applied(const std::string& path, TimePoint now);
  // path is to be pushed as it is here, even if our receiver put it there: a conflict copy
  // we made, or a version of ours a sender's older one lost to.
  void local_change(const std::string& path, TimePoint now);
  // Called when a push finished (from within the engine): run() should come soon.
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }
  // Members that failed to take some of a push (SessionSink::failed_targets).
  void set_on_failed(std::function<void(const std::vector<Target>&)> f) {
    on_failed_ = std::move(f);
  }
  // Whether a push started by run() wants the engine poked.
  bool take_started() { return std::exchange(started_, false); }
  const AutoPushStats& stats() const { return stats_; }
  std::vector<std::string> status_lines() const;

 private:
  struct Seen {
    bool absent = false;
    mode_t mode = 0;
    uint64_t size = 0;
    int64_t mtime = 0;
    uid_t uid = 0;
    gid_t gid = 0;
  };
  // What the worker looked at for a change: the path's stamp then, its content hash (regular
  // files up to 64 MiB not open for writing), and what is below a directory that changed whole.
  struct Observed {
    FileStamp stamp;
    std::optional<wire::Hash128> hash;
    std::optional<ScanResult> below;
  };
  static std::vector<Observed> observe(const std::vector<Change>& changes, int basefd,
                                       const std::string& base_path, const Excludes* excludes);
  // Takes the queued changes and looks at them on the worker; start() pushes them then.
  void push();
  void start(const std::vector<Change>& changes, std::vector<Observed>& observed, TimePoint now);
  std::vector<wire::Entry> build(const std::vector<Change>& changes,
                                 std::vector<Observed>& observed, TimePoint now);
  bool is_echo(const wire::Entry& e);
  // The entries of a subtree's listing that changed, and Absent ones for what the index holds
  // below root that is gone.
  template <class Add, class Versioned>
  void add_subtree(const std::string& root, ScanResult& below, std::vector<wire::Entry>& present,
                   std::vector<wire::Entry>& absent, Add& add, Versioned& versioned);

  AutoPushConfig cfg_;
  Engine& eng_;
  journal::Reader& reader_;
  ChangeQueue queue_;
  TimePoint settle_until_;
  std::optional<uint32_t> sid_;
  bool done_ = false, ok_ = false, started_ = false;
  bool building_ = false;      // changes are being looked at on the worker
  std::vector<Change> again_;  // changed again while they were: queued once more
  size_t inflight_entries_ = 0;
  TimePoint inflight_since_{};
  journal::Reader::Position read_pos_, inflight_pos_, committed_pos_;
  std::function<void()> wake_;
  std::function<void(const std::vector<Target>&)> on_failed_;
  std::unordered_map<std::string, Seen> echo_;
  std::deque<std::pair<TimePoint, std::string>> echo_order_;
  std::set<std::string> forced_;  // pending paths that are pushed even if they look like echoes
  // Files held back while open for writing through the mount, and since when.
  std::unordered_map<std::string, TimePoint> held_;
  std::vector<std::string> hold_;  // held by the build under way
  AutoPushStats stats_;
};

}  // namespace makuo
