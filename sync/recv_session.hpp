// The receiving side of one push: decides per file (receive_judge: need / same / ours stays /
// error), writes blocks into a temporary in the target directory, reports gaps, verifies the
// whole-file hash and commits through the Committer. Directory metadata is applied last,
// deepest first. Every change it makes is recorded in the tree index with the version judged.
#pragma once
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sync/block_set.hpp"
#include "sync/commit.hpp"
#include "sync/file_assembly.hpp"
#include "sync/hash.hpp"
#include "sync/hybrid_clock.hpp"
#include "sync/memory_budget.hpp"
#include "sync/paths.hpp"
#include "sync/receive_judge.hpp"
#include "sync/recv_entries.hpp"
#include "sync/transport.hpp"
#include "sync/tree_index.hpp"
#include "sync/wire.hpp"
#include "sync/worker.hpp"

namespace makuo {

struct ReceiverConfig {
  int basefd = -1;
  std::string base_path;
  bool readonly = false;    // -r
  bool privileged = false;  // may chown and mknod
  // Called after this node changed path in its base directory (committed, deleted, renamed,
  // metadata applied): mounts drop what they cached, the change feed skips its own echo.
  std::function<void(const std::string& path)> on_applied;
  // The versions this node holds (kept up to date with what we apply) and its clock; without
  // an index every path is judged as holding no version.
  TreeIndex* index = nullptr;
  HybridClock* clock = nullptr;
  std::string self;  // this node's name, as versions written here carry it
  // A version written here that loses to a concurrent one is kept as
  // NAME.makuo-conflict-NODE-TIME, and on_conflict_copy is told its path.
  bool keep_conflicts = false;
  std::function<void(const std::string& path)> on_conflict_copy;
  // Our version of path stays, and the sender of a propagated change lacks it (ours descends
  // from it, or won over it): the sender keeps its own unless we send ours, which this asks for.
  std::function<void(const std::string& path)> on_newer_here;
  // What all receive sessions together may hold in memory (null: no limit).
  MemoryBudget* budget = nullptr;
};

// The name a losing version written on node at when_ns is kept under, beside path.
std::string conflict_name(const std::string& path, const std::string& node, int64_t when_ns);

struct RecvStats {
  uint64_t files_committed = 0, files_failed = 0, bytes_written = 0, dup_blocks = 0;
  uint64_t conflicts = 0;       // versions written here that lost to concurrent ones
  uint64_t coded_rebuilt = 0;   // blocks rebuilt from coded repairs
  uint64_t refused_memory = 0;  // entries and files refused for want of memory (MemoryBudget)
};

class RecvSession {
 public:
  RecvSession(wire::NodeId self, std::string sender_name, Endpoint from, uint32_t sid,
              const ReceiverConfig& cfg, Committer& committer, Worker& worker, RecvStats& stats,
              TimePoint now);
  ~RecvSession();
  RecvSession(const RecvSession&) = delete;
  RecvSession& operator=(const RecvSession&) = delete;

  void on_manifest(const wire::Manifest& m, TimePoint now);
  // Data of this push reached us up to file upto (exclusive) before the session existed.
  void saw_data_before_manifest(uint32_t upto) {
    data_seen_upto_ = std::max(data_seen_upto_, upto);
  }
  void on_data(const wire::Data& d, TimePoint now);
  void on_poll(const wire::Poll& p, TimePoint now, Transport& net);
  void on_delete_ack(const wire::DeleteAck& a, TimePoint now);
  // Sends queued reports and due retransmissions.
  void flush(TimePoint now, Transport& net);
  TimePoint last_activity() const { return last_activity_; }
  // The sender ended the push (or vanished): no more packets are taken.
  void end() { ended_ = true; }
  bool ended() const { return ended_; }
  // Commits and blocking jobs (hashes, listings) not yet back: the session must outlive them.
  size_t pending() const { return pending_commits_ + pending_jobs_; }
  std::string describe() const;

 private:
  struct RecvFile {
    RecvFile(uint64_t size, uint32_t block_size) : data(size, block_size) {}
    Fd dir;
    std::string tmp;
    size_t held = 0;  // bytes taken from the budget for it
    FileAssembly data;
  };
  void on_coded(const wire::Data& d, TimePoint now);
  std::vector<uint8_t> coded_buf_;

  bool dry() const { return flags_ & wire::kDryRun; }
  const wire::Entry& entry(uint32_t idx) const { return *entries_.at(idx).entry; }
  // Memory from the daemon's budget (ReceiverConfig::budget), all given back at the end.
  bool take(size_t n);
  void give(size_t n);
  // Brings what f takes from the budget up to date; false: no memory for it.
  bool account(RecvFile& f);
  // Entry idx does not fit in memory: answered ENOMEM, not kept.
  void refuse(uint32_t idx);
  // Our version of path stays and the sender lacks it: make sure it gets ours (propagation
  // pushes only: a catch-up's sender hears from us through the catch-up the other way).
  void send_back(const std::string& path) {
    if ((flags_ & (wire::kAuto | wire::kRecursive)) == wire::kAuto && !dry() && cfg_.on_newer_here)
      cfg_.on_newer_here(path);
  }
  // The answer for entry idx, or Code::Unknown when it comes later (a hash or a listing on the
  // worker: see judge_later).
  wire::Code decide(uint32_t idx, uint16_t& err);
  // --check: entry idx's content is hashed on the worker, and answered then.
  void check_later(uint32_t idx);
  // Catch-up's digest: directory idx is listed on the worker, and compared and answered then.
  void digest_later(uint32_t idx);
  // What this node holds at path (st: on disk, or nullptr) and its version.
  Held held(const std::string& path, const struct stat* st);
  JudgeContext judge_context() const;
  // Judges entry idx against h (filling in our content hash when the judgement needs it).
  Judgement judge_entry(uint32_t idx, Held& h);
  // A judgement that leaves the state alone: records an adopted version, asks for ours to be
  // sent back. The code to answer.
  wire::Code settle(uint32_t idx, const Judgement& j);
  void resolve(uint32_t idx, wire::Code c, uint16_t err);
  int materialize(uint32_t idx);  // non-data kinds: symlink, fifo, device, empty file
  int start_file(uint32_t idx, RecvFile& f);
  void complete_file(uint32_t idx);
  // The whole-file hash of idx was checked (err: EBADMSG when it did not match): commit it.
  void verified(uint32_t idx, int err);
  void commit_temp(uint32_t idx, Fd dir, std::string tmp);
  // The target changed after decide() judged it (a write here, another push's commit): judge
  // it again. true: the commit was added again; false: the temporary is gone, and done.err
  // says what to answer (kKeptHere, kSameHere).
  bool judge_again(uint32_t idx, PendingCommit& done);
  static constexpr int kKeptHere = -10, kSameHere = -11;
  void try_hardlinks();
  void maybe_finalize();
  void open_made_dirs(const std::vector<uint32_t>& given);
  void run_dsync();
  // The version of a dsync deletion of path: the push's, on top of ours.
  PathVersion deleted_version(const std::string& path);
  void drop_file(uint32_t idx);
  int apply_meta_fd(int fd, const wire::Entry& e);
  // Renames our copy of e.from to e.path when it is the object the sender renamed. 0 = done.
  int try_rename(uint32_t idx, bool exists, const struct stat& st);
  // path changed here on behalf of this push; it now holds version v (nullptr: the index
  // moved it already), with content hash when known.
  void applied(const std::string& path, const PathVersion* v,
               const std::optional<wire::Hash128>& hash = std::nullopt);
  // Entry idx is applied and replaces a concurrent version of ours (j): remembers the conflict.
  void note_conflict(uint32_t idx, const Judgement& j, const Held& h, const struct stat* st);
  // The conflict of idx was settled: our version is gone, kept as copy ("" = not kept).
  void report_conflict(uint32_t idx, const std::string& copy);
  uint64_t tick() const;
  // ensure_dir for this push: the directories it makes are recorded as ours to take.
  // leaf_mode: what rel gets if made here (its entry's mode, writable by us until finalized).
  int make_dir(std::string_view rel, bool replace_symlink = false, mode_t leaf_mode = 0700);
  bool owner_kept(const wire::Entry& e) const;  // we could not give the file its owner

  wire::NodeId self_;
  std::string sender_name_;
  Endpoint from_;
  uint32_t sid_;
  const ReceiverConfig& cfg_;
  Committer& committer_;
  Worker& worker_;
  RecvStats& stats_;
  TimePoint last_activity_;
  TimePoint now_{};

  uint16_t flags_ = 0;
  uint16_t block_size_ = 0;
  uint32_t total_ = 0;
  bool have_total_ = false;
  RecvEntries entries_;
  size_t held_ = 0;  // taken from the budget, in all
  bool refused_logged_ = false;
  uint32_t received_ = 0;
  uint32_t next_missing_ = 0;  // no entry below it is missing
  uint32_t manifest_end_ = 0;  // end of the furthest manifest chunk seen
  // One past the furthest file the stream was seen at. Entries that arrive below it (a lost
  // manifest chunk) are marked late: their first blocks went for want of the entry.
  uint32_t data_seen_upto_ = 0;
  uint32_t open_nondir_ = 0;  // received entries (not directories) without a final code
  static constexpr uint32_t kFailuresLogged = 5;
  uint32_t failures_logged_ = 0;
  std::set<uint32_t> need_data_;  // regular files waiting for blocks
  std::unordered_map<uint32_t, RecvFile> files_;
  std::unordered_map<std::string, uint32_t> file_idx_;  // linked files, for their HardLinks
  std::vector<uint32_t> hardlinks_;
  std::vector<uint32_t> dirs_;
  std::vector<std::string> made_dirs_;  // made 0700 on the way to what the push carries
  size_t dir_resend_ = 0;
  struct Conflict {
    int64_t when_ns = 0;  // when our losing version was made
    bool deletion = false;
    std::string copy;  // keep it under this leaf name ("" = not kept)
  };
  std::unordered_map<uint32_t, Conflict> conflicts_;
  // What the target held when judged (kAuto), for the entries without a final answer.
  std::unordered_map<uint32_t, FileStamp> judged_;
  // The version each applied entry leaves here, until it is recorded.
  std::unordered_map<uint32_t, PathVersion> results_;
  bool finalized_ = false;
  bool ended_ = false;
  size_t pending_commits_ = 0, pending_jobs_ = 0;
  // Jobs on the worker hold a weak reference: a session gone meanwhile ignores their result.
  std::shared_ptr<char> life_ = std::make_shared<char>();
  std::vector<wire::ReportItem> reports_;
  wire::Nack gaps_;  // losses seen in the stream, NACKed at once rather than at the next poll

  // dsync
  PathVersion deletion_;  // what the deletions it makes are, merged with what we held
  std::string root_;
  Excludes excludes_;
  // What the sender has, as 64-bit hashes of its paths (a million paths in 8 MB; two that
  // collide keep a file here that a dsync would delete, never the other way round).
  std::vector<uint64_t> sender_keys_;
  static uint64_t path_key(std::string_view path);
  bool sent(std::string_view path) const;  // once sender_keys_ is sorted
  std::vector<wire::DeleteReport> del_chunks_;
  size_t del_next_ = 0;  // first chunk not yet acknowledged
  TimePoint del_sent_at_{};
  bool dsync_ran_ = false;
};

}  // namespace makuo
