// The sending side of one push: manifest out, per-file answers in, paced data for what is
// needed, NACK-driven repairs read back from the files, and a per-host, per-file outcome.
// Sans-I/O apart from reading the files being sent.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sync/fsops.hpp"
#include "sync/hash.hpp"
#include "sync/transport.hpp"
#include "sync/wire.hpp"

namespace makuo {

struct Target {
  wire::NodeId id = 0;
  std::string name;
  Endpoint ep;
};

// Where a session's console lines go. level follows makuosan's console levels.
struct SessionSink {
  std::function<void(int level, const std::string& line)> line;
  // Each entry's final answer from each target, for callers that act on answers: lines are for
  // people (paths in them are quoted, sync/paths shown()) and not to be parsed back.
  std::function<void(const std::string& node, const wire::Entry& e, wire::Code c)> result;
  // Before done: the targets that failed to apply something (a write or a delete refused, or
  // dropped as unresponsive), when there are any. Not for failures on our side.
  std::function<void(const std::vector<Target>&)> failed_targets;
  std::function<void(bool ok)> done;
};

struct SessionRequest {
  uint16_t flags = 0;  // wire::kDryRun | kCheck | kDsync | kRecursive
  std::vector<wire::Entry> entries;
  std::vector<Target> targets;
  bool unicast = false;               // -t: talk to the single target directly
  int loglevel = 0;                   // the console's level when the command started
  std::string root;                   // dsync
  std::vector<std::string> excludes;  // dsync
  PathVersion deletion;               // dsync: the version of the deletions it makes
};

struct Progress {
  uint64_t files_total = 0, files_done = 0;
  uint64_t bytes_total = 0, bytes_sent = 0;
};

struct SessionTuning {
  uint16_t block_size = 1372;
  Duration target_timeout = 10s;  // a silent target is dropped from the push after this
  Duration resend = 300ms;        // manifest chunks without an answer
  Duration poll_interval = 20ms;
  // How long a file's first repair request waits for the other receivers' requests: together
  // they make coded repairs, one datagram for a different loss at each.
  Duration repair_hold = 5ms;
  // An idle sender polls at once after a burst of blocks, but not closer than this to the last
  // poll.
  Duration idle_poll_gap = 2ms;
  uint32_t window_files = 4096;  // files sent but not yet final on every target
  // Manifest entries sent beyond the first one a target still waits for: what a receiver
  // holds of a push at once (RecvEntries), however large the push.
  uint32_t manifest_ahead = 16384;
};

class SendSession {
 public:
  SendSession(uint32_t sid, wire::NodeId self, int basefd, SessionRequest req, SessionSink sink,
              SessionTuning tuning, TimePoint now);

  uint32_t sid() const { return sid_; }
  void on_report(wire::NodeId from, const wire::Report& m, TimePoint now);
  void on_nack(wire::NodeId from, const wire::Nack& m, TimePoint now);
  void on_delete_report(wire::NodeId from, const wire::DeleteReport& m, TimePoint now,
                        Transport& net);
  void drop_target(wire::NodeId id, const std::string& why);
  // Sends what pacing and the socket allow; false when the socket would block.
  bool pump(TimePoint now, Pacer& pacer, Transport& net);
  TimePoint deadline(TimePoint now) const;
  bool finished() const { return finished_; }
  // The console went away: tell receivers to drop their temporaries.
  void abort(Transport& net);
  Progress progress() const { return progress_; }
  std::string describe() const;
  TimePoint started() const { return started_; }
  uint64_t repair_blocks() const { return repair_blocks_; }
  uint64_t coded_repairs() const { return coded_repairs_; }
  size_t entries() const { return entries_.size(); }
  std::vector<std::string> target_names() const;
  // Worst receiver's share of blocks lost since the last call (stream gaps it reported), or
  // -1 when fewer than min_blocks were sent since: the rate controller's input.
  double take_loss(uint64_t min_blocks);

 private:
  struct TargetState {
    Target t;
    bool alive = true;
    bool failed = false;  // something it was sent did not apply there
    TimePoint last_heard{};
    std::vector<wire::Code> codes;
    std::unordered_map<uint32_t, uint16_t> errs;
    uint32_t open = 0;         // entries without a final code
    uint32_t lowest_open = 0;  // first entry without a final code, pending directories aside
    bool dsync_final = false;
    uint64_t gap_blocks = 0, gap_mark = 0;  // blocks it reported lost as it saw the stream
    // When it last got somewhere (a final answer, fewer blocks missing than its last answer to
    // a poll said), and how many that was.
    TimePoint progress_at{};
    uint64_t missing = UINT64_MAX;
    // What it asked for and was not sent since, per file (repairs_ holds the union): what
    // coded repairs are put together from.
    std::map<uint32_t, std::vector<wire::BlockRange>> want;
    uint32_t dsync_next_chunk = 0;
  };
  struct Chunk {
    uint32_t first = 0, count = 0;
    TimePoint sent_at{};
    bool sampled = false;  // its first answer was timed
  };
  struct FileTx {
    wire::Hash128 hash{};
    uint32_t repaired_after_poll = 0;  // poll_seq_ when it was last repaired
  };
  struct Current {
    // User-provided: clang asks whether optional<Current> can be made before this class is
    // complete, and defaulted member initializers are not parsed by then.
    Current() noexcept {}
    uint32_t idx = 0;
    Fd fd;
    uint64_t offset = 0;
    Hasher hasher;
  };

  bool dry() const { return flags_ & wire::kDryRun; }
  bool data_session() const { return !(flags_ & (wire::kDryRun | wire::kCheck | wire::kDsync)); }
  TargetState* target(wire::NodeId id);
  void set_code(TargetState& ts, uint32_t idx, wire::Code c, uint16_t err);
  void advance_lowest(TargetState& ts);
  uint32_t lowest_open_all() const;
  bool needs_data(uint32_t idx, bool& undecided) const;
  void fail_everywhere(uint32_t idx, int err, const std::string& why);
  bool send(Transport& net, bool& blocked);
  bool allow(Pacer& pacer, size_t bytes, TimePoint now);
  bool send_block(uint32_t idx, uint64_t offset, std::span<const uint8_t> bytes, bool last,
                  const wire::Hash128& hash, TimePoint now, Pacer& pacer, Transport& net,
                  bool& blocked, uint64_t coded = 0);
  bool pump_manifest(TimePoint now, Pacer& pacer, Transport& net, bool& blocked);
  bool pump_repairs(TimePoint now, Pacer& pacer, Transport& net, bool& blocked);
  bool send_poll(TimePoint now, Transport& net, bool& blocked);
  bool wanted(uint32_t idx, uint64_t block) const;
  size_t alive_targets() const;
  uint64_t combine(uint32_t idx, uint64_t block, uint64_t nblocks);
  void served(uint32_t idx, uint64_t block, uint64_t coded);
  bool pump_first_pass(TimePoint now, Pacer& pacer, Transport& net, bool& blocked);
  void check_timeouts(TimePoint now);
  Duration resend_interval() const;
  void sample_answer_time(uint32_t idx, TimePoint now);
  void check_finished(Transport& net);
  Endpoint dest(Transport& net) const;

  uint32_t sid_;
  wire::NodeId self_;
  int basefd_;
  uint16_t flags_;
  std::vector<wire::Entry> entries_;
  bool unicast_;
  int loglevel_;
  std::string root_;
  std::vector<std::string> excludes_;
  PathVersion deletion_;
  SessionSink sink_;
  SessionTuning tun_;
  std::vector<TargetState> targets_;
  std::vector<Chunk> chunks_;
  std::set<size_t> urgent_chunks_;  // chunks a receiver reported lost
  size_t next_chunk_ = 0;           // first chunk never sent
  size_t lowest_unanswered_ = 0;    // chunks below are answered by every live target
  TimePoint last_resend_scan_{};
  Duration srtt_{};      // smoothed time from a manifest chunk to its first answer
  uint32_t cursor_ = 0;  // next entry the first pass looks at
  std::optional<Current> cur_;
  std::unordered_map<uint32_t, FileTx> sent_;
  std::map<uint32_t, std::vector<wire::BlockRange>> repairs_;
  std::unordered_map<uint32_t, TimePoint> repair_due_;  // file -> when its repairs may start
  std::pair<uint32_t, Fd> repair_fd_{UINT32_MAX, Fd()};
  std::vector<uint8_t> buf_;  // the first pass reads ahead into it
  std::vector<uint8_t> repair_buf_, coded_buf_;
  std::vector<const std::vector<wire::BlockRange>*> combine_wants_, combine_served_;
  size_t buf_len_ = 0;
  uint64_t buf_off_ = 0;
  uint32_t poll_seq_ = 0;
  TimePoint last_poll_{};
  bool blocks_since_poll_ = false;
  std::vector<uint8_t> dry_reported_;
  std::vector<uint8_t> need_counted_;
  wire::Bytes pkt_;
  std::optional<wire::Bytes> pending_;  // a datagram the socket refused, sent first next time
  Endpoint pending_to_;
  uint64_t blocks_sent_ = 0, blocks_mark_ = 0;  // first-pass blocks: gaps are only seen there
  int budget_ = 0;                              // datagrams this pump may still send
  bool more_ = false;  // the last pump left work for lack of budget or pacing
  bool failed_ = false;
  bool finished_ = false;
  Progress progress_;
  TimePoint started_{};
  uint64_t repair_blocks_ = 0;
  uint64_t coded_repairs_ = 0;  // of repair_blocks_, those that repaired several receivers
  TimePoint now_{};             // of the packet or pump being handled
  TimePoint sent_all_at_{};     // when every file had been sent once
};

}  // namespace makuo
