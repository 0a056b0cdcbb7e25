// The durable index of this node's tree: path -> metadata, content hash and version history
// (IndexEntry), kept in the state directory as a snapshot plus an append-only log of
// index_record records (a torn tail from a crash is skipped). It is updated by our receiver's
// commits and by the local changes we push, and checked against the disk at start (rescan).
//
// It answers the question last writer wins cannot answer from the disk alone: is the version
// on disk one that was written here and not yet seen elsewhere? An incoming version whose
// writer did not replace ours (ours is not among its ancestors) was written concurrently: a
// conflict, logged, and kept aside with --keep-conflicts.
#pragma once
#include <sys/stat.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sync/index_record.hpp"
#include "sync/wire.hpp"

namespace makuo {

// What is known of the version a path holds on disk.
struct LocalVersion {
  std::string origin;  // where it was written ("" = unknown)
  std::optional<wire::Hash128> hash;
  std::vector<wire::Version> ancestors;  // the versions it replaced there, latest first
};

class TreeIndex {
 public:
  // Files name and name.log in directory dirfd (which stays usable after a chroot).
  explicit TreeIndex(int dirfd, std::string name = "index");
  ~TreeIndex();
  TreeIndex(const TreeIndex&) = delete;
  TreeIndex& operator=(const TreeIndex&) = delete;

  // Reads the snapshot, then the log. 0 or errno; damage is skipped and described in warnings.
  // The files are given to uid:gid (-1: left alone), the daemon's user after its drop.
  int load(std::vector<std::string>& warnings, uid_t uid = uid_t(-1), gid_t gid = gid_t(-1));
  // No index existed before load(): what is on disk now was there before makuo kept one.
  bool fresh() const { return fresh_; }
  // When the index was last written before this run (0 if never).
  int64_t stamp_ns() const { return stamp_ns_; }

  const IndexEntry* find(const std::string& path) const;
  void put(const std::string& path, const IndexEntry& e);
  void erase_tree(const std::string& path);  // path and everything below it
  // from (and everything below it) is now at to; what was at to is gone.
  void rename_tree(const std::string& from, const std::string& to);
  size_t size() const { return map_.size(); }
  const std::map<std::string, IndexEntry>& entries() const { return map_; }

  // Appends what changed, and the time, to the log (0 or errno); with sync, makes it durable.
  // A log grown larger than the snapshot is folded into a new snapshot.
  int flush(int64_t now_ns, bool sync = false);
  bool dirty() const { return !pending_.empty(); }

  // The version on disk (st) as the index knows it; a version the index has not seen was
  // written here (origin self) on top of the one it has.
  LocalVersion local_version(const std::string& path, const struct stat& st,
                             const std::string& self) const;
  // A local change is being pushed: fills e's origin, ancestors and (if known) hash, and
  // records e. For an Absent entry, the deleted version heads its ancestors.
  void note_local(wire::Entry& e, const std::string& self);
  // Fills e's origin, ancestors and hash from the index without changing it (catch-up).
  void annotate(wire::Entry& e, const std::string& self) const;
  // Our receiver changed path: it now holds st (nullptr: gone), from incoming entry e if given.
  void note_applied(const std::string& path, const struct stat* st, const wire::Entry* e,
                    const std::string& sender);

 private:
  int open_log();
  int restart_log();  // empties the log, but for its magic
  int write_snapshot(int64_t now_ns);
  void log(const IndexRecord& r);

  int dirfd_;
  std::string name_, log_name_;
  int logfd_ = -1;
  bool fresh_ = true;
  int64_t stamp_ns_ = 0, written_ns_ = 0;
  uid_t uid_ = uid_t(-1);
  gid_t gid_ = gid_t(-1);
  uint64_t log_bytes_ = 0, snapshot_bytes_ = 0;
  std::vector<uint8_t> pending_;
  std::map<std::string, IndexEntry> map_;
};

IndexEntry index_entry_of(const wire::Entry& e);
IndexEntry index_entry_of(const struct stat& st);
// Same kind and, for non-directories, the same content version.
bool same_version(const IndexEntry& ie, const struct stat& st);
// The ancestors of a version written on top of old: old's version, then old's ancestors.
std::vector<wire::Version> descend_from(const IndexEntry& old);

}  // namespace makuo
