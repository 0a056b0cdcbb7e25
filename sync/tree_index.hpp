// The durable index of this node's tree: for every path, the state this node recorded (type,
// metadata, content hash) and the version that state is (version_vector.hpp); for every path
// deleted in the last --tombstone-days, a tombstone with the version of its deletion. Kept in
// the state directory as a snapshot plus an append-only log of index_record records (a torn
// tail from a crash is skipped). Updated by our receiver's commits, by the local changes we push
// and by the start-up rescan.
//
// A version is bumped where a change is made: note_local for a change recorded here (mount,
// --watch, rescan), stamp_push for an msync push. A state on disk that differs from what the
// index recorded is a change made here that is not recorded yet: local_version answers with it
// bumped, so that a receiver never takes it for the older version the index still holds.
#pragma once
#include <sys/stat.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sync/index_record.hpp"
#include "sync/wire.hpp"

namespace makuo {

class TreeIndex {
 public:
  // Files name and name.log in directory dirfd (which stays usable after a chroot).
  explicit TreeIndex(int dirfd, std::string name = "index");
  ~TreeIndex();
  TreeIndex(const TreeIndex&) = delete;
  TreeIndex& operator=(const TreeIndex&) = delete;

  // Reads the snapshot, then the log. 0 or errno; damage is skipped and described in warnings.
  // The files are given to uid:gid (-1: left alone), the daemon's user after its drop. An index
  // of release 0.1 is read once (its entries get no version: "no change seen yet", the same
  // on every node that holds the same bytes) and rewritten in the current format.
  int load(std::vector<std::string>& warnings, uid_t uid = uid_t(-1), gid_t gid = gid_t(-1));
  // No index existed before load(): what is on disk now was there before makuo kept one.
  bool fresh() const { return fresh_; }
  // load() read a release 0.1 index.
  bool upgraded() const { return upgraded_; }
  // When the index was last written before this run (0 if never).
  int64_t stamp_ns() const { return stamp_ns_; }
  // The largest clock value in any version held: a restarted hybrid clock starts past it.
  uint64_t max_clock() const;

  // Live entries (what is on disk) and tombstones (what was deleted) are kept apart: a path is
  // at most in one of them.
  const IndexEntry* find(const std::string& path) const;
  const IndexEntry* tombstone(const std::string& path) const;
  // The version the index holds for path: live, else its tombstone's, else none.
  PathVersion version_at(const std::string& path) const;
  void put(const std::string& path, const IndexEntry& e);  // live; replaces a tombstone
  // Forgets path and everything below it, live or buried.
  void erase_tree(const std::string& path);
  // Forgets the live entry at path (a rescan that cannot tell a deletion).
  void forget(const std::string& path);
  // path and every live entry below it were deleted, by a change of version v (the entries below
  // take v merged into their own), at wall time when_ns.
  void bury(const std::string& path, const PathVersion& v, int64_t when_ns);
  size_t size() const { return map_.size(); }
  size_t tombstones_size() const { return tombs_.size(); }
  const std::map<std::string, IndexEntry>& entries() const { return map_; }
  const std::map<std::string, IndexEntry>& tombstones() const { return tombs_; }
  // Tombstones directly in directory dir ("" = the base), and those at or below path.
  std::vector<std::pair<std::string, IndexEntry>> tombstones_in(const std::string& dir) const;
  std::vector<std::pair<std::string, IndexEntry>> tombstones_below(const std::string& path) const;
  // Drops tombstones older than keep_ns.
  void expire(int64_t now_ns, int64_t keep_ns);

  // Appends what changed, and the time, to the log (0 or errno); with sync, makes it durable.
  // A log grown larger than the snapshot is folded into a new snapshot.
  int flush(int64_t now_ns, bool sync = false);
  bool dirty() const { return !pending_.empty(); }

  // The version of what disk holds at path (st, or nullptr: nothing there), as a receiver
  // judges it: what the index recorded, or, where the disk differs from it (a directory's mtime
  // aside), a change made here on top of it (bumped with clock now, not stored: the change's
  // own record stores it).
  PathVersion local_version(const std::string& path, const struct stat* st, const std::string& self,
                            uint64_t now) const;
  // A change recorded here is being pushed: e is what path is now (Absent: gone). Gives e the
  // version it is (bumped with clock now when it differs from what the index recorded) and
  // records it. false: there is nothing to tell (an absent path the index never knew).
  bool note_local(wire::Entry& e, const std::string& self, uint64_t now, int64_t now_ns);
  // Gives e the version the index holds for its state, without changing the index, or (a
  // state the index did not record) the bumped version note_local would record: catch-up.
  void annotate(wire::Entry& e, const std::string& self, uint64_t now) const;
  // A local rename: what was at from and below is now at to and below. Each path moved gets a
  // version bumped on top of both histories (what was at its new place, and what it carries);
  // each old path a tombstone.
  void rename_tree(const std::string& from, const std::string& to, const std::string& self,
                   uint64_t now, int64_t now_ns);
  // Our receiver renamed its copy of from to to, on the sender's word: the entries move as they
  // are (the push then gives them the sender's versions).
  void move_tree(const std::string& from, const std::string& to);
  // Our receiver changed path: it now holds st (nullptr: gone) as version v; hash: of its
  // content, when known.
  void note_applied(const std::string& path, const struct stat* st, const PathVersion& v,
                    const std::optional<wire::Hash128>& hash, int64_t now_ns);
  // An msync push of e from here: e gets a new version (clock now) on top of what the index
  // holds; the index records it when e is what the disk holds (it is, but for a race).
  void stamp_push(wire::Entry& e, const std::string& self, uint64_t now);

 private:
  // What lives at from and below, each at its place below to.
  std::vector<std::pair<std::string, IndexEntry>> live_tree_moved(const std::string& from,
                                                                  const std::string& to) const;
  int open_log();
  int restart_log();  // empties the log, but for its magic
  int write_snapshot(int64_t now_ns);
  void log(const std::string& path, const IndexEntry* e);  // nullptr: erase
  void set_tomb(const std::string& path, const IndexEntry& e);

  int dirfd_;
  std::string name_, log_name_;
  int logfd_ = -1;
  bool fresh_ = true, upgraded_ = false;
  int64_t stamp_ns_ = 0, written_ns_ = 0;
  uid_t uid_ = uid_t(-1);
  gid_t gid_ = gid_t(-1);
  uint64_t log_bytes_ = 0, snapshot_bytes_ = 0;
  std::vector<uint8_t> pending_;
  std::map<std::string, IndexEntry> map_, tombs_;
};

IndexEntry index_entry_of(const wire::Entry& e);
// The Absent entry a push carries for a tombstone.
wire::Entry entry_of_tombstone(const std::string& path, const IndexEntry& t);
IndexEntry index_entry_of(const struct stat& st);
// Whether the disk (st) still holds the state the index recorded (type, size, mtime, mode and
// owner). dir_mtime false: a directory's mtime aside.
bool same_state(const IndexEntry& ie, const struct stat& st, bool dir_mtime = true);
// The same between a recorded state and an entry (content hashes compared when both are known).
bool same_state(const IndexEntry& ie, const wire::Entry& e);

// Reads release 0.1's tombstones file (name in dirfd) into index as deletions made here at
// their recorded times, and removes it. 0 or errno; a missing file is nothing to do.
int import_legacy_tombstones(int dirfd, const std::string& name, TreeIndex& index,
                             const std::string& self);

}  // namespace makuo
