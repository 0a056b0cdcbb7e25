// An in-memory LAN for Engines: fake clock, per-receiver loss, reordering, duplication and
// dead members, with real temporary base directories. Each node has a hybrid clock over a
// simulated wall clock (the fake time, plus a skew of its own).
#pragma once
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "sync/engine.hpp"
#include "sync/hybrid_clock.hpp"
#include "sync/tree_index.hpp"

namespace makuo::test {

namespace fs = std::filesystem;

struct SimOptions {
  double loss = 0;       // per packet, per receiver
  double duplicate = 0;  // probability a packet is delivered twice
  Duration jitter{};     // uniform extra delay: reorders packets
  Duration latency = 50us;
  uint32_t seed = 1;
  uint64_t rate = 0;       // sender pacing, bytes per second (0 = unpaced)
  int sends_per_step = 0;  // a node's socket takes this many datagrams per step (0 = all)
  bool index = false;      // each node keeps a tree index (in a state directory of its own)
  bool keep_conflicts = false;
  int starve = -1;  // this node never gets a Data datagram (but everything else: it answers)
};

class Sim {
 public:
  struct Node;
  struct Net final : Transport {
    Sim* sim;
    size_t self;
    SendStatus send(const Endpoint& to, std::span<const uint8_t> d) override {
      if (sim->opt_.sends_per_step && ++sent_this_step > sim->opt_.sends_per_step)
        return SendStatus::WouldBlock;  // a full socket buffer: the caller keeps the datagram
      sim->post(self, to, d);
      return SendStatus::Ok;
    }
    int sent_this_step = 0;
    Endpoint group() const override { return {0xef000001, 5000}; }
  };
  struct Node {
    fs::path base;
    int basefd = -1;
    int statefd = -1;
    std::unique_ptr<TreeIndex> index;
    std::unique_ptr<HybridClock> clock;
    int64_t skew_ns = 0;  // its wall clock minus the simulation's
    std::vector<std::string> conflict_copies;
    Net net;
    std::unique_ptr<Engine> engine;
    bool alive = true;
    Endpoint ep;
  };

  Sim(size_t n, SimOptions o, SessionTuning tuning = {}) : opt_(o), rng_(o.seed) {
    spdlog::set_level(spdlog::level::warn);
    root_ = fs::temp_directory_path() /
            ("makuo-sim-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    for (size_t i = 0; i < n; ++i) {
      auto nd = std::make_unique<Node>();
      nd->base = root_ / ("n" + std::to_string(i));
      fs::create_directories(nd->base);
      nd->basefd = open(nd->base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      nd->net.sim = this;
      nd->net.self = i;
      nd->ep = {0x0a000001u + uint32_t(i), 40000};
      EngineConfig c;
      c.name = "n" + std::to_string(i);
      c.version = "test";
      c.recv.basefd = nd->basefd;
      c.recv.base_path = nd->base.string();
      c.recv.privileged = false;
      c.tuning = tuning;
      c.rate_bytes = o.rate;
      Node* raw = nd.get();
      nd->clock = std::make_unique<HybridClock>([this, raw] { return wall_ns() + raw->skew_ns; });
      c.clock = nd->clock.get();
      if (o.index) {
        fs::create_directories(root_ / ("state" + std::to_string(i)));
        nd->statefd = open((root_ / ("state" + std::to_string(i))).c_str(),
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        nd->index = std::make_unique<TreeIndex>(nd->statefd);
        std::vector<std::string> warnings;
        nd->index->load(warnings);
        c.recv.index = nd->index.get();
        c.recv.clock = nd->clock.get();
        c.recv.self = c.name;
        c.recv.keep_conflicts = o.keep_conflicts;
        c.recv.on_conflict_copy = [raw](const std::string& p) {
          raw->conflict_copies.push_back(p);
        };
      }
      nd->engine = std::make_unique<Engine>(c, nd->net, 0x1000 + i);
      nodes_.push_back(std::move(nd));
    }
    for (auto& nd : nodes_) nd->engine->start(now_);
    run_for(2s);
  }
  ~Sim() {
    for (auto& nd : nodes_) {
      nd->engine.reset();
      nd->index.reset();
      close(nd->basefd);
      if (nd->statefd >= 0) close(nd->statefd);
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  Node& node(size_t i) { return *nodes_[i]; }
  TimePoint now() const { return now_; }
  // The simulated wall clock: 2026-12-01 at the start, moving with the fake time.
  int64_t wall_ns() const {
    return 1'796'083'200'000'000'000LL +
           std::chrono::duration_cast<std::chrono::nanoseconds>(now_ - TimePoint{}).count();
  }
  SimOptions& options() { return opt_; }
  void kill(size_t i) { nodes_[i]->alive = false; }

  void post(size_t from, const Endpoint& to, std::span<const uint8_t> d) {
    if (!nodes_[from]->alive) return;
    std::vector<uint8_t> bytes(d.begin(), d.end());
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (i == from) continue;
      bool group = to.addr == 0xef000001;
      if (!group && to.addr != nodes_[i]->ep.addr) continue;
      std::uniform_real_distribution<double> u(0, 1);
      if (group && u(rng_) < opt_.loss) continue;  // loss on what receivers get
      wire::Header h;
      if (int(i) == opt_.starve && wire::decode_header(bytes, h) == wire::Error::Ok &&
          h.type == wire::Type::Data)
        continue;
      int copies = u(rng_) < opt_.duplicate ? 2 : 1;
      for (int c = 0; c < copies; ++c) {
        Duration j{};
        if (opt_.jitter.count() > 0)
          j = Duration(std::uniform_int_distribution<int64_t>(0, opt_.jitter.count())(rng_));
        q_.push({now_ + opt_.latency + j, seq_++, i, nodes_[from]->ep, bytes, group});
      }
    }
  }

  // Advances time, delivering packets and running timers, until pred() or the deadline.
  template <class Pred>
  bool run_until(Pred pred, Duration limit) {
    TimePoint end = now_ + limit;
    while (now_ < end) {
      while (!q_.empty() && q_.top().at <= now_) {
        auto p = q_.top();
        q_.pop();
        if (nodes_[p.to]->alive)
          nodes_[p.to]->engine->on_packet(p.bytes, p.from, now_, Arrival{p.group, true, 0});
      }
      TimePoint next = end;
      for (auto& nd : nodes_) nd->net.sent_this_step = 0;
      for (auto& nd : nodes_)
        if (nd->alive) next = std::min(next, nd->engine->on_timer(now_));
      if (pred()) return true;
      if (!q_.empty()) next = std::min(next, q_.top().at);
      now_ = std::max(next, now_ + 10us);
    }
    return pred();
  }
  void run_for(Duration d) {
    run_until([] { return false; }, d);
  }

 private:
  struct Packet {
    TimePoint at;
    uint64_t seq;
    size_t to;
    Endpoint from;
    std::vector<uint8_t> bytes;
    bool group = true;
    bool operator>(const Packet& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  static inline int counter_ = 0;
  SimOptions opt_;
  std::mt19937_64 rng_;
  fs::path root_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::priority_queue<Packet, std::vector<Packet>, std::greater<>> q_;
  uint64_t seq_ = 0;
  TimePoint now_{std::chrono::seconds(1000)};
};

}  // namespace makuo::test
