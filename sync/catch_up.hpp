// Catch-up: servers that were down, new servers and servers back from a partition converge on
// their own. A catch-up first compares every directory's digest with the targets (dir_digest)
// and then pushes only what is in the directories that differ. When members join, after
// membership settles:
//  - a node that was alone (it just started, or came back from a partition) pushes its whole
//    tree and its tombstones to everyone;
//  - otherwise, for each joiner, the member with the lowest name among the others pushes its
//    whole tree and tombstones to that joiner.
// Both are versioned pushes (wire::kAuto): every receiver takes what descends from its own
// version and keeps what its own version descends from (a later write or deletion), and
// concurrent versions are ordered the same way on every node (receive_judge.hpp), so every path
// ends with the same version everywhere, whichever side had it. A state on disk the index did
// not record is a change made here: it is recorded (and bumped) as it is pushed. Unchanged
// files cost a manifest entry each, no data.
// A member that failed to take what we pushed it, automatically or in a catch-up (its disk
// was full, a write was refused, it was dropped from the push while still a member), is caught
// up again by us after `retry`, then after twice as long while it keeps failing, up to 16
// times as long: nothing it missed waits for the path's next change.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sync/engine.hpp"
#include "sync/hybrid_clock.hpp"
#include "sync/paths.hpp"
#include "sync/tree_index.hpp"

namespace makuo {

struct CatchUpConfig {
  int basefd = -1;
  std::string base_path;
  const Excludes* excludes = nullptr;
  Duration settle = 2s;        // after the last join before deciding
  Duration retry = 30s;        // before catching up a member that failed to take a push
  TreeIndex* index = nullptr;  // versions and hashes of what we push, tombstones
  HybridClock* clock = nullptr;
  std::string self;
};

struct CatchUpStats {
  uint64_t rounds = 0, entries = 0, updated = 0, deleted = 0, newer = 0, failed = 0;
  uint64_t dirs_compared = 0, dirs_differing = 0;
};

class CatchUp {
 public:
  CatchUp(CatchUpConfig cfg, Engine& engine);
  void on_member(const Member& m, bool joined, TimePoint now);
  // These members failed to take some of a push of ours (SessionSink::failed_targets).
  void failed(const std::vector<Target>& targets, TimePoint now);
  // Starts a catch-up push when due; returns when it wants to run again.
  TimePoint run(TimePoint now);
  bool take_started() { return std::exchange(started_, false); }
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }
  const CatchUpStats& stats() const { return stats_; }
  std::string state() const;

 private:
  // Phase 1: every directory's digest; the targets answer which differ. The tree is walked on
  // the engine's worker; the push starts when the walk is back.
  void compare(const std::vector<Target>& targets, const std::string& why);
  // Phase 2: what is in the differing directories (and in the base), and the tombstones. Listed
  // on the worker, recorded and pushed on the event loop (start_push).
  void push();
  void start_push(std::vector<std::pair<std::string, std::vector<wire::Entry>>>& listed);
  SessionSink sink(std::function<void(int, const std::string&)> line);

  struct Retry {
    Duration wait{};
    TimePoint due{};
    bool running = false;  // in the round under way
  };
  std::map<wire::NodeId, Retry> retries_;
  std::vector<Target> round_failed_;
  CatchUpConfig cfg_;
  Engine& eng_;
  std::set<wire::NodeId> joiners_;
  bool alone_ = true;  // no member before the current batch of joins
  TimePoint due_ = TimePoint::max();
  std::optional<uint32_t> sid_;
  std::string sid_why_;
  int phase_ = 0;
  std::vector<Target> targets_;
  std::set<std::string> differing_;
  size_t sid_entries_ = 0;
  bool started_ = false, done_ = false;
  bool walking_ = false;  // a walk or listing of ours is on the worker
  CatchUpStats stats_;
  std::function<void()> wake_;
};

}  // namespace makuo
