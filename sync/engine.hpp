// One node of the cluster without its sockets: membership, the pushes it drives, the pushes it
// receives, batched commits. Fed packets and timer ticks; talks through a Transport.
#pragma once
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sync/commit.hpp"
#include "sync/hybrid_clock.hpp"
#include "sync/membership.hpp"
#include "sync/recv_session.hpp"
#include "sync/send_session.hpp"
#include "sync/transport.hpp"
#include "sync/worker.hpp"

namespace makuo {

struct EngineConfig {
  std::string name;
  std::string version;
  ReceiverConfig recv;
  bool nosend = false;  // -s
  SessionTuning tuning;
  Duration heartbeat = 1s;
  Duration expiry = 3500ms;  // a silent member leaves after this
  Duration recv_gc = 60s;    // a receive session whose sender went silent is dropped
  uint64_t rate_bytes = 0;   // -T; 0 = as fast as the socket takes it
  // Commits flushed, files hashed and trees walked on threads of their own (the daemon); without
  // them, at once (tests).
  bool threads = false;
  // Heartbeats carry our clocks; a member whose wall clock is further than max_skew from ours
  // is warned about (nothing correct depends on it: versions are not clocks).
  HybridClock* clock = nullptr;
  Duration max_skew = 2s;
  // What the pushes we receive may hold in memory, all together (--recv-memory).
  size_t recv_memory = size_t(256) << 20;
};

struct EngineStats {
  uint64_t rx_packets = 0, rx_bytes = 0;
  uint64_t drop_truncated = 0, drop_magic = 0, drop_makuosan = 0, drop_version = 0,
           drop_malformed = 0, drop_unknown_session = 0, drop_too_many_sessions = 0;
  uint64_t sessions_sent = 0, sessions_received = 0;
  uint64_t drop_other_release = 0;  // of drop_version: our magic, another protocol version
  // Not from a current member: a session's start, anything on our unicast socket, membership
  // that did not come by the group.
  uint64_t drop_not_member = 0;
  uint64_t drop_unproven = 0;  // keyed: its sender did not answer our challenge yet
  uint64_t repair_blocks = 0;  // of finished pushes; repair_blocks() adds the running ones
  uint64_t coded_repairs = 0;  // of those, coded ones (one repairs several receivers)
};

struct SendInfo {
  uint32_t sid = 0;
  size_t entries = 0;
  Progress progress;
  std::vector<std::string> targets;
  Duration age{};
};

class Engine {
 public:
  static constexpr size_t kMaxReceiving = 64;
  static constexpr size_t kMaxReceivingPerSender = 16;

  Engine(EngineConfig cfg, Transport& net, wire::NodeId id);
  ~Engine();
  void start(TimePoint now);
  void stop(TimePoint now);
  void on_packet(std::span<const uint8_t> pkt, Endpoint from, TimePoint now, Arrival how = {});
  // Does everything that is due and returns when it wants to be called again.
  TimePoint on_timer(TimePoint now);

  // Starts a push; sink.done is called once when every target has answered or was dropped.
  uint32_t start_session(SessionRequest req, SessionSink sink, TimePoint now);
  void cancel_session(uint32_t sid);
  const SendSession* session(uint32_t sid) const;

  wire::NodeId id() const { return id_; }
  const EngineConfig& config() const { return cfg_; }
  const Membership& members() const { return members_; }
  const EngineStats& stats() const { return stats_; }
  const RecvStats& recv_stats() const { return rstats_; }
  const MemoryBudget& recv_memory() const { return budget_; }
  const Committer& committer() const { return committer_; }
  // Blocking work (hashing, tree walks) for this node's pushes, consoles and propagation.
  Worker& worker() { return worker_; }
  std::vector<std::string> session_lines() const;
  std::vector<SendInfo> send_info(TimePoint now) const;
  uint64_t repair_blocks() const;
  uint64_t coded_repairs() const;
  std::vector<std::string> receive_lines() const;
  // Pushes from other nodes still writing into our base directory.
  size_t receiving_active() const;
  uint64_t send_rate() const { return pacer_.rate(); }  // bytes/s now; 0 = not limited
  // Called from the commit and worker threads when results are ready.
  void set_wake(std::function<void()> wake) {
    committer_.set_wake(wake);
    worker_.set_wake(std::move(wake));
  }
  // Called when a member joins (true) or leaves (false).
  void set_member_hook(std::function<void(const Member&, bool joined, TimePoint now)> hook) {
    member_hook_ = std::move(hook);
  }

 private:
  wire::Announce self_announce() const;
  void announce(wire::Type t, const Endpoint& to);
  // A member said who it is (a heartbeat, or its answer to our challenge).
  void heard(wire::NodeId node, const wire::Announce& a, const Endpoint& from, TimePoint now);
  // Asks node (at to) to prove it is live now, at most twice a second.
  void challenge(wire::NodeId node, const Endpoint& to, TimePoint now);
  void member_gone(const Member& m, const std::string& why);
  void drop_undecodable(wire::Error err, std::span<const uint8_t> pkt, Endpoint from,
                        TimePoint now);
  bool admitted(const wire::Header& h, std::span<const uint8_t> body, Endpoint from, TimePoint now,
                Arrival how, const Member*& member);
  void to_receiver(const wire::Header& h, std::span<const uint8_t> body, Endpoint from,
                   TimePoint now, const Member* member);
  void to_sender(const wire::Header& h, std::span<const uint8_t> body, TimePoint now);
  void adapt_rate(TimePoint now);

  EngineConfig cfg_;
  Transport& net_;
  wire::NodeId id_;
  Membership members_;
  Pacer pacer_;
  Committer committer_;
  Worker worker_;
  MemoryBudget budget_;
  RecvStats rstats_;
  EngineStats stats_;
  uint32_t next_sid_;
  TimePoint next_heartbeat_{};
  TimePoint rate_check_{};
  uint64_t rate_mark_bytes_ = 0;
  TimePoint rate_hold_{};
  std::function<void(const Member&, bool, TimePoint)> member_hook_;
  std::map<uint32_t, TimePoint> release_warned_;  // peers of another protocol, by address
  struct Asked {
    wire::Challenge c;
    TimePoint at{};
  };
  std::map<wire::NodeId, Asked> challenges_;
  std::mt19937_64 nonce_rng_{std::random_device{}()};
  std::map<uint32_t, std::unique_ptr<SendSession>> sending_;
  std::map<std::pair<wire::NodeId, uint32_t>, std::unique_ptr<RecvSession>> receiving_;
  // The last push whose data came before any of its manifest: which one, and how far.
  struct Orphan {
    wire::NodeId node = 0;
    uint32_t sid = 0, upto = 0;
  } orphan_;
};

}  // namespace makuo
