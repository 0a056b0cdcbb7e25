#include "sync/engine.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <random>

namespace makuo {

namespace {
// Where the loss-driven rate starts (below -T): a gigabit LAN's worth. Unpaced, one GSO
// sender finishes a first pass of tens of MiB before the first loss report is back, and the
// rate is judged on first-pass blocks only, so a receiver on a slow link would get every
// repair round at full speed too.
constexpr uint64_t kStartRate = 125'000'000;
// A paced sender wakes up for about one GSO send's worth (DatagramBatch::kMaxBytes).
constexpr size_t kSendBatchBytes = 65507;
}  // namespace

Engine::Engine(EngineConfig cfg, Transport& net, wire::NodeId id)
    : cfg_(std::move(cfg)),
      net_(net),
      id_(id),
      members_(cfg_.expiry),
      pacer_(cfg_.rate_bytes ? std::min(cfg_.rate_bytes, kStartRate) : kStartRate),
      committer_(cfg_.recv.basefd, cfg_.threads),
      worker_(cfg_.threads),
      budget_(cfg_.recv_memory),
      next_sid_(uint32_t(std::random_device{}())) {
  cfg_.recv.budget = &budget_;
}

Engine::~Engine() {
  committer_.flush();
  receiving_.clear();
}

wire::Announce Engine::self_announce() const {
  wire::Announce a{cfg_.name, cfg_.version, 0, cfg_.clock ? cfg_.clock->wall() : realtime_ns(),
                   cfg_.clock ? cfg_.clock->last() : 0};
  if (cfg_.recv.readonly) a.flags |= wire::kAnnounceReadOnly;
  if (cfg_.nosend) a.flags |= wire::kAnnounceNoSend;
  return a;
}

void Engine::announce(wire::Type t, const Endpoint& to) {
  wire::Bytes b;
  wire::encode(b, id_, t, self_announce());
  net_.send(to, b);
}

void Engine::heard(wire::NodeId node, const wire::Announce& a, const Endpoint& from,
                   TimePoint now) {
  if (members_.announce(node, a, from, now)) {
    spdlog::info("member {} ({}) joined", a.name, from.str());
    if (member_hook_) member_hook_(*members_.find(node), true, now);
  }
  if (!cfg_.clock) return;
  cfg_.clock->observe(a.clock);
  int64_t skew = a.wall_ns - cfg_.clock->wall();
  int64_t max = std::chrono::duration_cast<std::chrono::nanoseconds>(cfg_.max_skew).count();
  if (!members_.note_skew(node, skew, max)) return;
  double secs = double(skew < 0 ? -skew : skew) / 1e9;
  if (members_.find(node)->skewed)
    spdlog::warn(
        "clock of {} is {:.1f} s {} ours (more than --max-skew {} s): nothing replicated "
        "depends on it, but concurrent writes are ordered by clocks; check NTP",
        a.name, secs, skew < 0 ? "behind" : "ahead of",
        std::chrono::duration<double>(cfg_.max_skew).count());
  else
    spdlog::info("clock of {} is back within --max-skew ({:.3f} s)", a.name, double(skew) / 1e9);
}

void Engine::start(TimePoint now) {
  announce(wire::Type::Hello, net_.group());
  next_heartbeat_ = now + cfg_.heartbeat;
}

void Engine::stop(TimePoint now) {
  (void)now;
  for (auto& [sid, s] : sending_) s->abort(net_);
  committer_.flush();
  announce(wire::Type::Bye, net_.group());
}

void Engine::member_gone(const Member& m, const std::string& why) {
  spdlog::warn("member {} ({}) left: {}", m.name, m.ep.str(), why);
  for (auto& [sid, s] : sending_) s->drop_target(m.id, why);
  if (member_hook_) member_hook_(m, false, Clock::now());
}

void Engine::challenge(wire::NodeId node, const Endpoint& to, TimePoint now) {
  auto it = challenges_.find(node);
  if (it != challenges_.end() && now - it->second.at < 500ms) return;
  if (it == challenges_.end()) {
    if (challenges_.size() >= 1024) challenges_.clear();  // a flood of key holders' node ids
    it = challenges_.emplace(node, Asked{}).first;
  }
  for (size_t i = 0; i < it->second.c.nonce.size(); i += 8) {
    uint64_t r = nonce_rng_();
    std::memcpy(it->second.c.nonce.data() + i, &r, 8);
  }
  it->second.at = now;
  wire::Bytes b;
  wire::encode(b, id_, it->second.c);
  net_.send(to, b);
}

void Engine::on_packet(std::span<const uint8_t> pkt, Endpoint from, TimePoint now, Arrival how) {
  ++stats_.rx_packets;
  stats_.rx_bytes += pkt.size();
  wire::Header h;
  if (auto err = wire::decode_header(pkt, h); err != wire::Error::Ok)
    return drop_undecodable(err, pkt, from, now);
  if (h.node == id_) return;  // our own multicast looped back
  auto body = pkt.subspan(wire::kHeaderSize);
  const Member* member = nullptr;
  if (!admitted(h, body, from, now, how, member)) return;
  switch (h.type) {
    case wire::Type::Hello:
    case wire::Type::Heartbeat: {
      wire::Announce a;
      if (wire::decode(body, a) != wire::Error::Ok) return void(++stats_.drop_malformed);
      heard(h.node, a, from, now);
      if (h.type == wire::Type::Hello) announce(wire::Type::Heartbeat, net_.group());
      return;
    }
    case wire::Type::Challenge:
    case wire::Type::Response:
      return;  // answered by admitted()
    case wire::Type::Bye: {
      if (const Member* m = members_.find(h.node)) {
        Member copy = *m;
        members_.remove(h.node);
        member_gone(copy, "left the cluster (daemon stopped)");
      }
      return;
    }
    case wire::Type::Manifest:
    case wire::Type::Data:
    case wire::Type::Poll:
    case wire::Type::End:
    case wire::Type::DeleteAck:
      return to_receiver(h, body, from, now, member);
    case wire::Type::Report:
    case wire::Type::Nack:
    case wire::Type::DeleteReport:
      return to_sender(h, body, now);
  }
}

// Counted by why: another makuosan, another release (said once an hour per peer), or noise.
void Engine::drop_undecodable(wire::Error err, std::span<const uint8_t> pkt, Endpoint from,
                              TimePoint now) {
  if (!pkt.empty() && pkt[0] == 7) {
    ++stats_.drop_makuosan;  // a makuosan 1.3.x daemon on the same group and port
  } else if (err == wire::Error::Truncated) {
    ++stats_.drop_truncated;
  } else if (err == wire::Error::BadMagic) {
    ++stats_.drop_magic;
  } else if (err == wire::Error::BadVersion) {
    ++stats_.drop_version;
    // Our magic, another protocol: a makuo of another release. Said once an hour per peer.
    ++stats_.drop_other_release;
    auto [it, fresh] = release_warned_.try_emplace(from.addr, now);
    if (fresh || now - it->second > std::chrono::hours(1)) {
      it->second = now;
      if (release_warned_.size() > 1024) release_warned_.clear();
      spdlog::warn(
          "{} speaks makuo protocol {} and this node {}: their datagrams are dropped both "
          "ways. Release 0.2 orders versions, not mtimes, and cannot be mixed with 0.1: "
          "upgrade every node",
          from.str(), pkt.size() > 4 ? int(pkt[4]) : -1, int(wire::kVersion));
    }
  } else {
    ++stats_.drop_malformed;
  }
}

// Challenges and their answers are handled here; anything else is taken only from a sender
// that proved it is live now, and on our unicast socket only from a member (membership itself
// is heard on the group only). member: the sender, when it is one.
bool Engine::admitted(const wire::Header& h, std::span<const uint8_t> body, Endpoint from,
                      TimePoint now, Arrival how, const Member*& member) {
  auto bad = [&] {
    ++stats_.drop_malformed;
    return false;
  };
  if (h.type == wire::Type::Challenge) {
    wire::Challenge c;
    if (wire::decode(body, c) != wire::Error::Ok) return bad();
    wire::Bytes b;
    wire::encode(b, id_, wire::Response{c.nonce, self_announce()});
    net_.send(from, b);
    return false;
  }
  if (h.type == wire::Type::Response) {
    wire::Response r;
    if (wire::decode(body, r) != wire::Error::Ok) return bad();
    auto it = challenges_.find(h.node);
    if (it == challenges_.end() || it->second.c.nonce != r.nonce) return false;
    net_.prove(h.node, how.counter);
    challenges_.erase(it);
    // Proven live now, by an answer only a key holder could seal: a member at once (it is
    // heard on the group from now on), instead of at its next heartbeat.
    heard(h.node, r.who, from, now);
    return false;
  }
  if (!how.proven) {
    ++stats_.drop_unproven;
    challenge(h.node, from, now);
    return false;
  }
  // Membership is heard on the group only, and our unicast socket takes only what members send.
  member = members_.find(h.node);
  bool membership =
      h.type == wire::Type::Hello || h.type == wire::Type::Heartbeat || h.type == wire::Type::Bye;
  if (!how.group && (membership || !member || !(member->ep == from))) {
    ++stats_.drop_not_member;
    return false;
  }
  members_.touch(h.node, now);
  return true;
}

// What a sender sends to the receivers of its push.
void Engine::to_receiver(const wire::Header& h, std::span<const uint8_t> body, Endpoint from,
                         TimePoint now, const Member* member) {
  switch (h.type) {
    case wire::Type::Manifest: {
      wire::Manifest m;
      if (wire::decode(body, m) != wire::Error::Ok) return void(++stats_.drop_malformed);
      auto key = std::make_pair(h.node, m.sid);
      auto it = receiving_.find(key);
      if (it == receiving_.end()) {
        if (!member) return void(++stats_.drop_not_member);  // a push only from a member
        // A bounded number of pushes at once, so that no sender can exhaust our memory.
        size_t from_sender = 0;
        for (auto& [k, s] : receiving_) from_sender += k.first == h.node;
        if (receiving_.size() >= kMaxReceiving || from_sender >= kMaxReceivingPerSender) {
          ++stats_.drop_too_many_sessions;
          return;
        }
        ++stats_.sessions_received;
        const Member* sender = members_.find(h.node);
        it = receiving_
                 .emplace(key, std::make_unique<RecvSession>(
                                   id_, sender ? sender->name : std::string(), from, m.sid,
                                   cfg_.recv, committer_, worker_, rstats_, now))
                 .first;
      }
      if (orphan_.node == h.node && orphan_.sid == m.sid) {
        it->second->saw_data_before_manifest(orphan_.upto);
        orphan_ = {};
      }
      it->second->on_manifest(m, now);
      // Answered chunk by chunk: the sender sends a file's blocks once every receiver said it
      // needs them, and answering only after the whole drain (a manifest of 1,000 entries
      // takes ~12 ms to judge here) kept the link idle that long at the start of each push.
      it->second->flush(now, net_);
      return;
    }
    case wire::Type::Data: {
      wire::Data d;
      if (wire::decode(body, d) != wire::Error::Ok) return void(++stats_.drop_malformed);
      auto it = receiving_.find({h.node, d.sid});
      if (it == receiving_.end()) {
        // The push's first manifest chunks may have been lost: its session, when it comes,
        // must know that the stream went past these files (see RecvSession).
        if (orphan_.node != h.node || orphan_.sid != d.sid) orphan_ = {h.node, d.sid, 0};
        if (!d.coded) orphan_.upto = std::max(orphan_.upto, d.idx + 1);
        return void(++stats_.drop_unknown_session);
      }
      it->second->on_data(d, now);
      if (committer_.pending() >= 256) committer_.flush();
      return;
    }
    case wire::Type::Poll: {
      wire::Poll p;
      if (wire::decode(body, p) != wire::Error::Ok) return void(++stats_.drop_malformed);
      auto it = receiving_.find({h.node, p.sid});
      if (it == receiving_.end()) return void(++stats_.drop_unknown_session);
      committer_.flush();  // answer with everything that is ready
      it->second->on_poll(p, now, net_);
      return;
    }
    case wire::Type::End: {
      wire::End e;
      if (wire::decode(body, e) != wire::Error::Ok) return void(++stats_.drop_malformed);
      auto it = receiving_.find({h.node, e.sid});
      if (it == receiving_.end()) return;
      committer_.flush();
      it->second->flush(now, net_);
      it->second->end();  // erased once its commits have come back
      return;
    }
    case wire::Type::DeleteAck: {
      wire::DeleteAck a;
      if (wire::decode(body, a) != wire::Error::Ok) return void(++stats_.drop_malformed);
      auto it = receiving_.find({h.node, a.sid});
      if (it != receiving_.end()) it->second->on_delete_ack(a, now);
      return;
    }
    default:
      return;
  }
}

// What receivers answer the sender of a push.
void Engine::to_sender(const wire::Header& h, std::span<const uint8_t> body, TimePoint now) {
  switch (h.type) {
    case wire::Type::Report: {
      wire::Report r;
      if (wire::decode(body, r) != wire::Error::Ok) return void(++stats_.drop_malformed);
      auto it = sending_.find(r.sid);
      if (it == sending_.end()) return void(++stats_.drop_unknown_session);
      it->second->on_report(h.node, r, now);
      return;
    }
    case wire::Type::Nack: {
      wire::Nack n;
      if (wire::decode(body, n) != wire::Error::Ok) return void(++stats_.drop_malformed);
      auto it = sending_.find(n.sid);
      if (it == sending_.end()) return void(++stats_.drop_unknown_session);
      it->second->on_nack(h.node, n, now);
      return;
    }
    case wire::Type::DeleteReport: {
      wire::DeleteReport r;
      if (wire::decode(body, r) != wire::Error::Ok) return void(++stats_.drop_malformed);
      auto it = sending_.find(r.sid);
      if (it == sending_.end()) return void(++stats_.drop_unknown_session);
      it->second->on_delete_report(h.node, r, now, net_);
      return;
    }
    default:
      return;
  }
}

void Engine::adapt_rate(TimePoint now) {
  // Loss-driven pacing: when a receiver loses a large share of what we send, it cannot keep
  // up (a slower link, a busy host), and blasting on only multiplies repairs. Back off to what
  // the worst receiver got (a little below); creep back up (1/8 per period) while loss stays
  // low. Random loss of a few percent is repaired, not slowed down for. -T stays the ceiling.
  constexpr Duration kPeriod = 50ms;
  constexpr uint64_t kMinRate = 1'000'000;
  constexpr uint64_t kUnlimited = 1'250'000'000;  // beyond 10 Gbit/s: let the socket decide
  if (now - rate_check_ < kPeriod) return;
  double secs = std::chrono::duration<double>(now - rate_check_).count();
  uint64_t measured = uint64_t(double(pacer_.total() - rate_mark_bytes_) / secs);
  rate_check_ = now;
  rate_mark_bytes_ = pacer_.total();
  double worst = -1;
  for (auto& [sid, s] : sending_) worst = std::max(worst, s->take_loss(64));
  // Gaps reported just after a cut were lost before it: let one round go by unjudged.
  if (worst < 0 || now < rate_hold_) return;
  uint64_t cap = cfg_.rate_bytes, rate = pacer_.rate();
  if (worst > 0.2) {
    uint64_t base = rate ? std::min(rate, measured) : measured;
    uint64_t next = std::max(kMinRate, uint64_t(double(base) * std::max(0.1, 1 - worst) * 0.9));
    if (cap) next = std::min(next, cap);
    if (next != rate)
      spdlog::debug("send rate {} Mbit/s (receivers lose {:.0f}%)", next * 8 / 1000000,
                    worst * 100);
    pacer_.set_rate(next);
    rate_hold_ = now + 2 * kPeriod;
  } else if (worst < 0.05 && rate != 0 && rate != cap && measured * 5 >= rate * 4) {
    uint64_t next = rate + rate / 8;
    if (cap && next >= cap) next = cap;
    if (!cap && next >= kUnlimited) next = 0;
    pacer_.set_rate(next);
  }
}

TimePoint Engine::on_timer(TimePoint now) {
  if (now >= next_heartbeat_) {
    announce(wire::Type::Heartbeat, net_.group());
    next_heartbeat_ = now + cfg_.heartbeat;
  }
  for (auto& m : members_.expire(now)) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.expiry).count();
    member_gone(m, "left the cluster (no heartbeat for " + std::to_string(ms) + "ms)");
  }
  committer_.collect();
  worker_.collect();
  if (committer_.due(now)) committer_.flush();
  for (auto it = receiving_.begin(); it != receiving_.end();) {
    RecvSession& rs = *it->second;
    rs.flush(now, net_);
    bool abandoned = now - rs.last_activity() > cfg_.recv_gc;
    if (abandoned && !rs.ended()) {
      spdlog::warn("receive session {} abandoned by its sender", rs.describe());
      rs.end();
      committer_.flush();
    }
    if (rs.ended() && rs.pending() == 0) {
      it = receiving_.erase(it);
    } else {
      ++it;
    }
  }
  adapt_rate(now);
  TimePoint next = std::min(next_heartbeat_, committer_.deadline());
  next = std::min(next, now + 500ms);  // membership expiry granularity
  bool blocked = false;
  for (auto it = sending_.begin(); it != sending_.end();) {
    SendSession& s = *it->second;
    if (!blocked && !s.pump(now, pacer_, net_)) blocked = true;
    if (s.finished()) {
      stats_.repair_blocks += s.repair_blocks();
      stats_.coded_repairs += s.coded_repairs();
      it = sending_.erase(it);
      continue;
    }
    TimePoint d = s.deadline(now);
    if (d <= now) d = std::max(pacer_.next_send(now, kSendBatchBytes), now + 100us);
    next = std::min(next, d);
    ++it;
  }
  return next;
}

uint32_t Engine::start_session(SessionRequest req, SessionSink sink, TimePoint now) {
  uint32_t sid = ++next_sid_;
  ++stats_.sessions_sent;
  auto s = std::make_unique<SendSession>(sid, id_, cfg_.recv.basefd, std::move(req),
                                         std::move(sink), cfg_.tuning, now);
  sending_.emplace(sid, std::move(s));
  return sid;
}

void Engine::cancel_session(uint32_t sid) {
  auto it = sending_.find(sid);
  if (it == sending_.end()) return;
  it->second->abort(net_);
  stats_.repair_blocks += it->second->repair_blocks();
  stats_.coded_repairs += it->second->coded_repairs();
  sending_.erase(it);
}

const SendSession* Engine::session(uint32_t sid) const {
  auto it = sending_.find(sid);
  return it == sending_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Engine::session_lines() const {
  std::vector<std::string> v;
  for (auto& [sid, s] : sending_) v.push_back(s->describe());
  return v;
}

std::vector<SendInfo> Engine::send_info(TimePoint now) const {
  std::vector<SendInfo> v;
  for (auto& [sid, s] : sending_)
    v.push_back({sid, s->entries(), s->progress(), s->target_names(), now - s->started()});
  return v;
}

uint64_t Engine::repair_blocks() const {
  uint64_t n = stats_.repair_blocks;
  for (auto& [sid, s] : sending_) n += s->repair_blocks();
  return n;
}

uint64_t Engine::coded_repairs() const {
  uint64_t n = stats_.coded_repairs;
  for (auto& [sid, s] : sending_) n += s->coded_repairs();
  return n;
}

size_t Engine::receiving_active() const {
  size_t n = 0;
  for (auto& [k, s] : receiving_) n += !s->ended() || s->pending() > 0;
  return n;
}

std::vector<std::string> Engine::receive_lines() const {
  std::vector<std::string> v;
  for (auto& [k, s] : receiving_) v.push_back(s->describe());
  return v;
}

}  // namespace makuo
