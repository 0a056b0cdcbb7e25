#include "sync/send_session.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "sync/paths.hpp"

namespace makuo {
namespace {

uint64_t nblocks(uint64_t size, uint16_t bs) {
  return (size + bs - 1) / bs;
}

std::string errstr(int e) {
  return e ? strerror(e) : "unknown error";
}

// Adds ranges to a sorted, merged range list: one sort however many (a NACK may carry
// thousands).
void merge_ranges(std::vector<wire::BlockRange>& v, const std::vector<wire::BlockRange>& add) {
  if (add.empty()) return;
  v.insert(v.end(), add.begin(), add.end());
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<wire::BlockRange> out;
  for (auto& x : v) {
    if (!out.empty() && uint64_t(out.back().first) + out.back().count >= x.first) {
      uint64_t end = std::max<uint64_t>(uint64_t(out.back().first) + out.back().count,
                                        uint64_t(x.first) + x.count);
      out.back().count = uint32_t(end - out.back().first);
    } else {
      out.push_back(x);
    }
  }
  v.swap(out);
}

// The last range of a sorted list that starts at or before b (v.end() if none does).
template <class V>
auto range_at(V& v, uint64_t b) {
  auto it = std::upper_bound(v.begin(), v.end(), b,
                             [](uint64_t x, const wire::BlockRange& r) { return x < r.first; });
  return it == v.begin() ? v.end() : std::prev(it);
}

bool in_ranges(const std::vector<wire::BlockRange>& v, uint64_t b) {
  auto r = range_at(v, b);
  return r != v.end() && b < uint64_t(r->first) + r->count;
}

void remove_block(std::vector<wire::BlockRange>& v, uint64_t b) {
  auto r = range_at(v, b);
  if (r == v.end()) return;
  uint64_t end = uint64_t(r->first) + r->count;
  if (b >= end) return;
  if (b == r->first) {
    ++r->first;
    if (--r->count == 0) v.erase(r);
  } else if (b + 1 == end) {
    --r->count;
  } else {
    wire::BlockRange tail{uint32_t(b + 1), uint32_t(end - b - 1)};
    r->count = uint32_t(b - r->first);
    v.insert(std::next(r), tail);
  }
}

}  // namespace

SendSession::SendSession(uint32_t sid, wire::NodeId self, int basefd, SessionRequest req,
                         SessionSink sink, SessionTuning tuning, TimePoint now)
    : sid_(sid),
      self_(self),
      basefd_(basefd),
      flags_(req.flags),
      entries_(std::move(req.entries)),
      unicast_(req.unicast),
      loglevel_(req.loglevel),
      root_(std::move(req.root)),
      excludes_(std::move(req.excludes)),
      deletion_(std::move(req.deletion)),
      sink_(std::move(sink)),
      tun_(tuning),
      started_(now) {
  for (auto& t : req.targets) {
    TargetState ts;
    ts.t = t;
    ts.last_heard = ts.progress_at = now;
    ts.codes.assign(entries_.size(), wire::Code::Unknown);
    ts.open = uint32_t(entries_.size());
    targets_.push_back(std::move(ts));
  }
  dry_reported_.assign(entries_.size(), 0);
  need_counted_.assign(entries_.size(), 0);
  // Pack entries into datagram-sized manifest chunks; the first dsync chunk also carries the
  // root and the exclude patterns.
  size_t budget = tun_.block_size + wire::kDataOverhead - wire::kManifestOverhead;
  size_t extra = 0;
  if (flags_ & wire::kDsync) {
    extra = 4 + root_.size() + 3 + deletion_.origin.size() + 16 * deletion_.vv.size();
    for (auto& x : excludes_) extra += 2 + x.size();
  }
  Chunk c;
  size_t used = extra;
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    size_t sz = wire::encoded_size(entries_[i]);
    if (c.count > 0 && (used + sz > budget || c.count == 65535)) {
      chunks_.push_back(c);
      c = Chunk{i, 0, {}, false};
      used = 0;
    }
    used += sz;
    ++c.count;
  }
  if (c.count > 0 || chunks_.empty()) chunks_.push_back(c);
  progress_.files_total = entries_.size();
  buf_.resize(size_t(tun_.block_size) * 48);
  repair_buf_.resize(2 * size_t(tun_.block_size));  // a block, and combine()'s scratch
}

SendSession::TargetState* SendSession::target(wire::NodeId id) {
  for (auto& t : targets_)
    if (t.t.id == id) return &t;
  return nullptr;
}

Endpoint SendSession::dest(Transport& net) const {
  return unicast_ && !targets_.empty() ? targets_.front().t.ep : net.group();
}

void SendSession::advance_lowest(TargetState& ts) {
  // Directories are answered last (their metadata is applied after their contents), so they
  // do not hold the window back.
  auto settled = [&](uint32_t i) {
    return wire::is_final(ts.codes[i], dry()) ||
           (ts.codes[i] == wire::Code::Need && entries_[i].kind == wire::Kind::Dir);
  };
  while (ts.lowest_open < ts.codes.size() && settled(ts.lowest_open)) ++ts.lowest_open;
}

uint32_t SendSession::lowest_open_all() const {
  uint32_t lo = uint32_t(entries_.size());
  for (auto& ts : targets_)
    if (ts.alive) lo = std::min(lo, ts.lowest_open);
  return lo;
}

void SendSession::set_code(TargetState& ts, uint32_t idx, wire::Code c, uint16_t err) {
  wire::Code old = ts.codes[idx];
  if (wire::is_final(old, dry()) || c == wire::Code::Unknown || c == old) return;
  if (old != wire::Code::Unknown && c == wire::Code::Need) return;  // stale answer
  ts.codes[idx] = c;
  if (wire::is_final(c, dry())) ts.want.erase(idx);
  const auto& e = entries_[idx];
  const std::string path = shown(e.path);
  const std::string where = ts.t.name + ":" + path;
  if (c == wire::Code::Need && !dry()) {
    if (!need_counted_[idx]) {
      need_counted_[idx] = 1;
      if (e.kind == wire::Kind::File) progress_.bytes_total += e.size;
    }
    return;
  }
  --ts.open;
  ts.progress_at = now_;
  advance_lowest(ts);
  if (sink_.result) sink_.result(ts.t.name, e, c);
  switch (c) {
    case wire::Code::Need:  // dry run
      sink_.line(1, "(dryrun) update " + where);
      if (!dry_reported_[idx]) {
        dry_reported_[idx] = 1;
        if (loglevel_ == 0) sink_.line(0, "(dryrun) [update:" + path + "]");
      }
      break;
    case wire::Code::Same:
      sink_.line(2, "skip   " + where);
      break;
    case wire::Code::ReadOnly:
      sink_.line(3, "skipro " + where);
      break;
    case wire::Code::Newer:
      sink_.line(1, "kept   " + where + " (newer there: last writer wins)");
      break;
    case wire::Code::Done:
      sink_.line(1, "update " + where);
      break;
    case wire::Code::DoneOwnerKept:
      sink_.line(1, "update " + where);
      sink_.line(0, "warning: owner " + (e.user.empty() ? std::to_string(e.uid) : e.user) + ":" +
                        (e.group.empty() ? std::to_string(e.gid) : e.group) + " not applied on " +
                        where + " (makuosan there does not run as root)");
      break;
    case wire::Code::CheckOk:
      sink_.line(1, ts.t.name + ": OK " + path);
      break;
    case wire::Code::CheckNg:
      failed_ = true;
      sink_.line(0, ts.t.name + ": NG " + path);
      break;
    case wire::Code::Deleted:
      if (dry()) {
        sink_.line(1, "(dryrun) delete " + where);
        if (!dry_reported_[idx]) {
          dry_reported_[idx] = 1;
          if (loglevel_ == 0) sink_.line(0, "(dryrun) [delete:" + path + "]");
        }
      } else {
        sink_.line(1, "delete " + where);
      }
      break;
    case wire::Code::Failed:
      failed_ = true;
      ts.failed = true;
      ts.errs[idx] = err;
      sink_.line(0, "error: " + errstr(err) + " " + where);
      break;
    default:
      break;
  }
  bool all = true;
  for (auto& t : targets_)
    if (t.alive && !wire::is_final(t.codes[idx], dry())) all = false;
  if (all) ++progress_.files_done;
}

Duration SendSession::resend_interval() const {
  // A lost manifest chunk costs one resend interval: keep it a few answer times, not a
  // fixed 300 ms, on a LAN where answers take a millisecond.
  if (srtt_ == Duration::zero()) return tun_.resend;
  return std::clamp<Duration>(4 * srtt_ + 5ms, 20ms, tun_.resend);
}

void SendSession::sample_answer_time(uint32_t idx, TimePoint now) {
  auto it = std::upper_bound(chunks_.begin(), chunks_.end(), idx,
                             [](uint32_t i, const Chunk& c) { return i < c.first; });
  if (it == chunks_.begin()) return;
  Chunk& c = *std::prev(it);
  if (c.sampled || c.sent_at == TimePoint{}) return;
  c.sampled = true;
  Duration d = now - c.sent_at;
  srtt_ = srtt_ == Duration::zero() ? d : (7 * srtt_ + d) / 8;
}

void SendSession::on_report(wire::NodeId from, const wire::Report& m, TimePoint now) {
  now_ = now;
  TargetState* ts = target(from);
  if (!ts || !ts->alive) return;
  ts->last_heard = now;
  if (!m.items.empty() && m.items.front().code != wire::Code::Unknown)
    sample_answer_time(m.items.front().idx, now);
  for (auto& it : m.items)
    if (it.idx < entries_.size()) set_code(*ts, it.idx, it.code, it.err);
}

void SendSession::on_nack(wire::NodeId from, const wire::Nack& m, TimePoint now) {
  TargetState* ts = target(from);
  if (!ts || !ts->alive) return;
  ts->last_heard = now;
  if (m.poll_seq == wire::kStreamGap)
    for (auto& f : m.files)
      for (auto& r : f.ranges) ts->gap_blocks += r.count;
  uint64_t missing = 0;  // blocks it still lacks, as this answer to a poll says
  for (auto& f : m.files) {
    if (f.ranges.empty()) {  // a manifest chunk was lost: resend it with the next pump
      auto c = std::upper_bound(chunks_.begin(), chunks_.end(), f.idx,
                                [](uint32_t i, const Chunk& ch) { return i < ch.first; });
      if (c != chunks_.begin()) {
        size_t ci = size_t(std::prev(c) - chunks_.begin());
        if (ci < next_chunk_) urgent_chunks_.insert(ci);
      }
      continue;
    }
    auto it = sent_.find(f.idx);
    if (it == sent_.end() || f.idx >= entries_.size()) continue;
    // A NACK answers a poll; if the file was repaired after that poll went out, the blocks it
    // asks for may still be in flight: the next poll's answer tells.
    if (it->second.repaired_after_poll >= m.poll_seq) continue;
    uint64_t nb = nblocks(entries_[f.idx].size, tun_.block_size);
    // The hold gathers the other receivers' NACKs for one coded repair; a lone receiver has
    // nobody to share it with.
    if (!repairs_.count(f.idx) && alive_targets() > 1) repair_due_[f.idx] = now + tun_.repair_hold;
    std::vector<wire::BlockRange> asked;
    for (auto r : f.ranges) {
      if (r.first >= nb) continue;
      r.count = uint32_t(std::min<uint64_t>(r.count, nb - r.first));
      asked.push_back(r);
      missing += r.count;
    }
    auto& v = repairs_[f.idx];
    auto& w = ts->want[f.idx];
    merge_ranges(v, asked);
    merge_ranges(w, asked);
    if (v.empty()) {
      repairs_.erase(f.idx);
      repair_due_.erase(f.idx);
    }
    if (w.empty()) ts->want.erase(f.idx);
  }
  if (m.poll_seq != wire::kStreamGap) {
    if (missing < ts->missing) ts->progress_at = now;
    ts->missing = missing;
  }
}

void SendSession::on_delete_report(wire::NodeId from, const wire::DeleteReport& m, TimePoint now,
                                   Transport& net) {
  TargetState* ts = target(from);
  if (!ts || !ts->alive) return;
  ts->last_heard = now;
  // Acknowledge every copy; print each chunk once (chunks arrive in order, one at a time).
  wire::Bytes ack;
  wire::encode(ack, self_, wire::DeleteAck{sid_, m.chunk});
  net.send(ts->t.ep, ack);
  if (m.chunk != ts->dsync_next_chunk) return;
  ++ts->dsync_next_chunk;
  for (auto& d : m.items) {
    std::string where = ts->t.name + ":" + shown(d.path);
    if (d.err) {
      failed_ = true;
      ts->failed = true;
      sink_.line(0, "error: delete error (" + errstr(d.err) + ") " + where);
    } else {
      sink_.line(0, std::string(dry() ? "(dryrun) " : "") + "delete " + where);
    }
  }
  if (m.final) ts->dsync_final = true;
}

void SendSession::drop_target(wire::NodeId id, const std::string& why) {
  TargetState* ts = target(id);
  if (!ts || !ts->alive) return;
  ts->alive = false;
  ts->failed = true;
  failed_ = true;
  sink_.line(0, "error: " + ts->t.name + " " + why + ", dropped from this push");
}

void SendSession::check_timeouts(TimePoint now) {
  auto secs =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(tun_.target_timeout).count());
  // Everything was sent once: from then on a target that still owes answers must show that it
  // gets somewhere (a file done, fewer blocks missing), or it holds every other target back.
  bool all_sent = data_session() && cursor_ >= entries_.size() && !cur_;
  if (all_sent && sent_all_at_ == TimePoint{}) sent_all_at_ = now;
  for (auto& ts : targets_) {
    bool waiting = ts.open > 0 || ((flags_ & wire::kDsync) && !ts.dsync_final);
    if (!ts.alive || !waiting) continue;
    if (now - ts.last_heard > tun_.target_timeout) {
      drop_target(ts.t.id, "did not answer for " + secs + "s");
    } else if (all_sent && now - std::max(ts.progress_at, sent_all_at_) > tun_.target_timeout) {
      drop_target(ts.t.id, "answered but made no progress for " + secs + "s");
    }
  }
}

bool SendSession::needs_data(uint32_t idx, bool& undecided) const {
  undecided = false;
  const auto& e = entries_[idx];
  if (e.kind != wire::Kind::File || e.size == 0) return false;
  bool need = false;
  for (auto& ts : targets_) {
    if (!ts.alive) continue;
    if (ts.codes[idx] == wire::Code::Need) need = true;
    if (ts.codes[idx] == wire::Code::Unknown) undecided = true;
  }
  return need;
}

void SendSession::fail_everywhere(uint32_t idx, int err, const std::string& why) {
  sink_.line(0, "error: " + why + " " + shown(entries_[idx].path));
  for (auto& ts : targets_)
    if (ts.alive && !wire::is_final(ts.codes[idx], dry())) {
      ts.codes[idx] = wire::Code::Failed;
      ts.errs[idx] = uint16_t(err);
      --ts.open;
      advance_lowest(ts);
      if (sink_.result) sink_.result(ts.t.name, entries_[idx], wire::Code::Failed);
    }
  failed_ = true;
}

bool SendSession::send_poll(TimePoint now, Transport& net, bool& blocked) {
  wire::Poll p;
  p.sid = sid_;
  p.seq = ++poll_seq_;
  p.sent_upto = cur_ ? cur_->idx : cursor_;
  p.sent_offset = cur_ ? cur_->offset : 0;
  p.lowest_open = lowest_open_all();
  pkt_.clear();
  wire::encode(pkt_, self_, p);
  last_poll_ = now;
  blocks_since_poll_ = false;
  return send(net, blocked);
}

bool SendSession::send(Transport& net, bool& blocked) {
  Endpoint to = dest(net);
  switch (net.send(to, pkt_)) {
    case SendStatus::Ok:
      return true;
    case SendStatus::WouldBlock:
      pending_ = pkt_;
      pending_to_ = to;
      blocked = true;
      return false;
    case SendStatus::Error:
      return true;  // counted by the transport; repairs cover it
  }
  return true;
}

bool SendSession::pump_manifest(TimePoint now, Pacer& pacer, Transport& net, bool& blocked) {
  auto answered = [&](const Chunk& c) {
    for (auto& ts : targets_) {
      if (!ts.alive) continue;
      for (uint32_t i = c.first; i < c.first + c.count; ++i)
        if (ts.codes[i] == wire::Code::Unknown) return false;
    }
    return true;
  };
  while (lowest_unanswered_ < next_chunk_ && answered(chunks_[lowest_unanswered_]))
    ++lowest_unanswered_;
  auto emit = [&](size_t ci) {
    const Chunk& c = chunks_[ci];
    wire::Manifest m;
    m.sid = sid_;
    m.flags = flags_;
    m.block_size = tun_.block_size;
    m.total = uint32_t(entries_.size());
    m.first = c.first;
    m.entries.assign(entries_.begin() + c.first, entries_.begin() + c.first + c.count);
    if (c.first == 0) {
      m.root = root_;
      m.excludes = excludes_;
      m.deletion = deletion_;
    }
    pkt_.clear();
    wire::encode(pkt_, self_, m);
    if (!allow(pacer, pkt_.size(), now)) return false;
    chunks_[ci].sent_at = now;
    send(net, blocked);  // refused by the socket: kept pending, sent first next time
    return true;
  };
  for (auto it = urgent_chunks_.begin(); it != urgent_chunks_.end();) {
    if (!emit(*it)) return false;
    it = urgent_chunks_.erase(it);
    if (blocked) return false;
  }
  if (now - last_resend_scan_ >= resend_interval() / 3) {
    last_resend_scan_ = now;
    for (size_t ci = lowest_unanswered_; ci < next_chunk_; ++ci) {
      if (now - chunks_[ci].sent_at < resend_interval() || answered(chunks_[ci])) continue;
      if (!emit(ci) || blocked) return false;
    }
  }
  // Ahead of what every receiver still waits for by at most manifest_ahead entries.
  uint32_t ahead_of = lowest_open_all();
  while (next_chunk_ < chunks_.size() && next_chunk_ < lowest_unanswered_ + 512 &&
         chunks_[next_chunk_].first - std::min(ahead_of, chunks_[next_chunk_].first) <
             tun_.manifest_ahead) {
    if (!emit(next_chunk_)) return false;
    ++next_chunk_;
    if (blocked) return false;
  }
  return true;
}

bool SendSession::send_block(uint32_t idx, uint64_t offset, std::span<const uint8_t> bytes,
                             bool last, const wire::Hash128& hash, TimePoint now, Pacer& pacer,
                             Transport& net, bool& blocked, uint64_t coded) {
  wire::Data d;
  d.sid = sid_;
  d.idx = idx;
  d.offset = offset;
  d.last = last;
  d.hash = hash;
  d.payload = bytes;
  d.coded = coded;
  pkt_.clear();
  wire::encode(pkt_, self_, d);
  if (!allow(pacer, pkt_.size(), now)) return false;
  blocks_since_poll_ = true;
  return send(net, blocked);
}

double SendSession::take_loss(uint64_t min_blocks) {
  uint64_t sent = blocks_sent_ - blocks_mark_;
  if (sent < min_blocks) return -1;
  double worst = 0;
  for (auto& ts : targets_) {
    if (ts.alive) worst = std::max(worst, double(ts.gap_blocks - ts.gap_mark) / double(sent));
    ts.gap_mark = ts.gap_blocks;
  }
  blocks_mark_ = blocks_sent_;
  return worst;
}

bool SendSession::pump_repairs(TimePoint now, Pacer& pacer, Transport& net, bool& blocked) {
  for (auto it = repairs_.begin(); it != repairs_.end();) {
    uint32_t idx = it->first;
    if (auto d = repair_due_.find(idx); d != repair_due_.end() && d->second > now) {
      ++it;
      continue;
    }
    auto& ranges = it->second;
    const auto& e = entries_[idx];
    if (repair_fd_.first != idx) {
      int fd = open_beneath(basefd_, e.path, O_RDONLY);
      if (fd < 0) {
        fail_everywhere(idx, -fd, "can't read (" + errstr(-fd) + ")");
        repair_due_.erase(idx);
        it = repairs_.erase(it);
        continue;
      }
      repair_fd_ = {idx, Fd(fd)};
    }
    uint64_t nb = nblocks(e.size, tun_.block_size);
    while (!ranges.empty()) {
      auto& r = ranges.front();
      if (!wanted(idx, r.first)) {  // repaired inside a coded repair already
        ++r.first;
        if (--r.count == 0) ranges.erase(ranges.begin());
        continue;
      }
      uint64_t off = uint64_t(r.first) * tun_.block_size;
      size_t len = size_t(std::min<uint64_t>(tun_.block_size, e.size - off));
      ssize_t n = pread(repair_fd_.second.get(), repair_buf_.data(), len, off_t(off));
      if (n != ssize_t(len)) {
        fail_everywhere(idx, n < 0 ? errno : ESTALE, "file changed while sending");
        ranges.clear();
        break;
      }
      bool last = r.first + 1 == nb;
      uint64_t coded = last ? 0 : combine(idx, r.first, nb);
      std::span<const uint8_t> payload{repair_buf_.data(), len};
      if (coded) payload = coded_buf_;
      bool sent =
          send_block(idx, off, payload, last, sent_[idx].hash, now, pacer, net, blocked, coded);
      if (!sent && !blocked) return false;  // budget or pacer: this block next time
      served(idx, r.first, coded ? coded : 1);
      sent_[idx].repaired_after_poll = poll_seq_;
      ++repair_blocks_;
      if (coded) ++coded_repairs_;
      ++r.first;
      if (--r.count == 0) ranges.erase(ranges.begin());
      if (blocked) return false;  // sent once the socket takes it
    }
    repair_due_.erase(idx);
    it = repairs_.erase(it);
    for (auto& ts : targets_) ts.want.erase(idx);
  }
  return true;
}

size_t SendSession::alive_targets() const {
  return size_t(std::count_if(targets_.begin(), targets_.end(), [](auto& t) { return t.alive; }));
}

bool SendSession::wanted(uint32_t idx, uint64_t block) const {
  for (auto& ts : targets_) {
    if (!ts.alive) continue;
    auto w = ts.want.find(idx);
    if (w != ts.want.end() && in_ranges(w->second, block)) return true;
  }
  return false;
}

// Puts together a coded repair around block (already in repair_buf_): for every receiver
// that wants none of those chosen so far, one block it wants that no receiver served by them
// wants, within the next 64. Each receiver served then misses exactly one block of the XOR,
// as far as its NACKs tell. Returns the mask (0: fewer than two blocks, send it plain) and
// leaves the XOR in coded_buf_.
uint64_t SendSession::combine(uint32_t idx, uint64_t block, uint64_t nblocks) {
  uint64_t mask = 1, end = std::min<uint64_t>(block + 64, nblocks - 1);  // never the last
  auto& wants = combine_wants_;  // of every live receiver asking
  wants.clear();
  for (auto& ts : targets_) {
    auto w = ts.want.find(idx);
    if (ts.alive && w != ts.want.end()) wants.push_back(&w->second);
  }
  auto& served = combine_served_;  // wants one block of mask
  served.clear();
  auto add = [&](uint64_t c) {
    mask |= 1ull << (c - block);
    for (auto* w : wants)
      if (in_ranges(*w, c)) served.push_back(w);
  };
  auto wants_chosen = [&](const std::vector<wire::BlockRange>& w) {
    for (uint64_t m = mask; m; m &= m - 1)
      if (in_ranges(w, block + uint64_t(std::countr_zero(m)))) return true;
    return false;
  };
  // A candidate for a receiver: one it wants, and no receiver already served wants.
  auto pick = [&](const std::vector<wire::BlockRange>& w) -> uint64_t {
    auto r = range_at(w, block);
    if (r == w.end()) r = w.begin();
    int tries = 0;
    for (; r != w.end() && r->first < end; ++r) {
      uint64_t rend = std::min<uint64_t>(uint64_t(r->first) + r->count, end);
      for (uint64_t c = std::max<uint64_t>(r->first, block + 1); c < rend; ++c) {
        if (++tries > 8) return 0;
        if (std::none_of(served.begin(), served.end(), [&](auto* s) { return in_ranges(*s, c); }))
          return c;
      }
    }
    return 0;
  };
  add(block);
  for (auto* w : wants) {
    if (wants_chosen(*w)) continue;
    if (uint64_t c = pick(*w)) add(c);
  }
  if (std::popcount(mask) < 2) return 0;
  size_t bs = tun_.block_size;
  coded_buf_.assign(repair_buf_.begin(), repair_buf_.begin() + ptrdiff_t(bs));
  uint8_t* other = repair_buf_.data() + bs;  // repair_buf_ holds two blocks
  for (uint64_t m = mask & (mask - 1); m; m &= m - 1) {
    uint64_t c = block + uint64_t(std::countr_zero(m));
    if (pread(repair_fd_.second.get(), other, bs, off_t(c * bs)) != ssize_t(bs)) return 0;
    wire::xor_into(coded_buf_, {other, bs});
  }
  return mask;
}

// After a repair of the blocks in coded (relative to block) went out: every receiver that
// wanted exactly one of them has it now, as far as we can tell; its next NACK says otherwise.
void SendSession::served(uint32_t idx, uint64_t block, uint64_t coded) {
  for (auto& ts : targets_) {
    auto w = ts.want.find(idx);
    if (w == ts.want.end()) continue;
    uint64_t hit = 0;
    int n = 0;
    for (uint64_t m = coded; m; m &= m - 1) {
      uint64_t c = block + uint64_t(std::countr_zero(m));
      if (in_ranges(w->second, c)) {
        hit = c;
        ++n;
      }
    }
    if (n != 1) continue;
    remove_block(w->second, hit);
    if (w->second.empty()) ts.want.erase(w);
  }
}

bool SendSession::pump_first_pass(TimePoint now, Pacer& pacer, Transport& net, bool& blocked) {
  for (;;) {
    if (!cur_) {
      if (cursor_ >= entries_.size()) return true;
      if (cursor_ >= lowest_open_all() + tun_.window_files) return true;
      bool undecided = false;
      if (!needs_data(cursor_, undecided)) {
        if (undecided && entries_[cursor_].kind == wire::Kind::File && entries_[cursor_].size)
          return true;  // wait for the answers
        ++cursor_;
        continue;
      }
      const auto& e = entries_[cursor_];
      int fd = open_beneath(basefd_, e.path, O_RDONLY);
      struct stat st;
      if (fd < 0 || fstat(fd, &st) != 0 || uint64_t(st.st_size) != e.size) {
        int err = fd < 0 ? -fd : ESTALE;
        if (fd >= 0) close(fd);
        fail_everywhere(cursor_, err,
                        fd < 0 ? "can't read (" + errstr(err) + ")" : "file changed while sending");
        ++cursor_;
        continue;
      }
      posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      cur_.emplace();
      cur_->idx = cursor_;
      sent_[cursor_];  // repairable from now on (its hash comes with its last block)
      cur_->fd = Fd(fd);
      buf_len_ = 0;
      buf_off_ = 0;
    }
    const auto& e = entries_[cur_->idx];
    while (cur_->offset < e.size) {
      if (cur_->offset >= buf_off_ + buf_len_) {
        size_t want = size_t(std::min<uint64_t>(buf_.size(), e.size - cur_->offset));
        ssize_t n = pread(cur_->fd.get(), buf_.data(), want, off_t(cur_->offset));
        if (n != ssize_t(want)) {
          fail_everywhere(cur_->idx, n < 0 ? errno : ESTALE, "file changed while sending");
          cur_.reset();
          ++cursor_;
          break;
        }
        cur_->hasher.update({buf_.data(), want});
        buf_off_ = cur_->offset;
        buf_len_ = want;
      }
      size_t len = size_t(std::min<uint64_t>(tun_.block_size, e.size - cur_->offset));
      bool last = cur_->offset + len == e.size;
      wire::Hash128 h{};
      if (last) {
        h = cur_->hasher.digest();
        sent_[cur_->idx].hash = h;
      }
      if (!send_block(cur_->idx, cur_->offset, {buf_.data() + (cur_->offset - buf_off_), len}, last,
                      h, now, pacer, net, blocked)) {
        if (blocked) {
          ++blocks_sent_;
          cur_->offset += len;
          progress_.bytes_sent += len;
        }
        return false;
      }
      ++blocks_sent_;
      cur_->offset += len;
      progress_.bytes_sent += len;
    }
    if (cur_ && cur_->offset >= e.size) {
      cur_.reset();
      ++cursor_;
    }
  }
}

bool SendSession::allow(Pacer& pacer, size_t bytes, TimePoint now) {
  if (budget_ == 0 || !pacer.allow(bytes, now)) {
    more_ = true;
    return false;
  }
  --budget_;
  return true;
}

bool SendSession::pump(TimePoint now, Pacer& pacer, Transport& net) {
  now_ = now;
  if (finished_) return true;
  // Bounded work per call, so that the event loop reads answers and heartbeats in between.
  budget_ = 256;
  more_ = false;
  if (pending_) {
    if (net.send(pending_to_, *pending_) == SendStatus::WouldBlock) return false;
    pending_.reset();
  }
  check_timeouts(now);
  if (std::none_of(targets_.begin(), targets_.end(), [](auto& t) { return t.alive; })) {
    // Nobody (left) to push to: an empty cluster is not an error, as in makuosan.
    check_finished(net);
    return true;
  }
  bool blocked = false;
  // The poll goes first: a saturated link must not silence it, or every receiver would look
  // dead after --timeout without a single loss to NACK.
  if (data_session() && next_chunk_ > 0 && now - last_poll_ >= tun_.poll_interval &&
      !send_poll(now, net, blocked))
    return false;
  bool ok = pump_manifest(now, pacer, net, blocked);
  if (ok && data_session()) ok = pump_repairs(now, pacer, net, blocked);
  if (ok && data_session()) ok = pump_first_pass(now, pacer, net, blocked);
  if (blocked) return false;
  // Blocks went out since the last poll and nothing is left to send: ask now. The last losses
  // of a push (and of each repair round) are then known a round trip after the last block
  // instead of up to a poll interval later; one poll per burst keeps the answers few.
  if (ok && !more_ && blocks_since_poll_ && now - last_poll_ >= tun_.idle_poll_gap &&
      !send_poll(now, net, blocked))
    return false;
  check_finished(net);
  return true;
}

void SendSession::check_finished(Transport& net) {
  if (finished_) return;
  for (auto& ts : targets_) {
    if (!ts.alive) continue;
    if (ts.open > 0) return;
    if ((flags_ & wire::kDsync) && !ts.dsync_final) return;
  }
  finished_ = true;
  pkt_.clear();
  wire::encode(pkt_, self_, wire::End{sid_, false});
  for (int i = 0; i < 2; ++i) net.send(dest(net), pkt_);
  if (sink_.failed_targets) {
    std::vector<Target> failed;
    for (auto& ts : targets_)
      if (ts.failed) failed.push_back(ts.t);
    if (!failed.empty()) sink_.failed_targets(failed);
  }
  if (sink_.done) sink_.done(!failed_);
}

void SendSession::abort(Transport& net) {
  if (finished_) return;
  finished_ = true;
  pkt_.clear();
  wire::encode(pkt_, self_, wire::End{sid_, true});
  for (int i = 0; i < 2; ++i) net.send(dest(net), pkt_);
}

TimePoint SendSession::deadline(TimePoint now) const {
  if (finished_) return TimePoint::max();
  if (pending_) return now + 1ms;
  // more_: the last pump stopped on its budget or the pacer with something left to send
  if (more_ || !urgent_chunks_.empty()) return now;
  TimePoint t = last_resend_scan_ + resend_interval() / 3;
  if (data_session() && next_chunk_ > 0) t = std::min(t, last_poll_ + tun_.poll_interval);
  if (blocks_since_poll_) t = std::min(t, last_poll_ + tun_.idle_poll_gap);
  for (auto& [idx, due] : repair_due_) t = std::min(t, due);
  for (auto& ts : targets_)
    if (ts.alive) t = std::min(t, ts.last_heard + tun_.target_timeout + 1ms);
  // the first pass may be waiting on answers: those arrive as packets, which pump again
  return std::max(t, now);
}

std::vector<std::string> SendSession::target_names() const {
  std::vector<std::string> v;
  for (auto& ts : targets_) v.push_back(ts.t.name + (ts.alive ? "" : " (dropped)"));
  return v;
}

std::string SendSession::describe() const {
  std::string s = "sid=" + std::to_string(sid_) + " entries=" + std::to_string(entries_.size()) +
                  " done=" + std::to_string(progress_.files_done) +
                  " bytes=" + std::to_string(progress_.bytes_sent) + "/" +
                  std::to_string(progress_.bytes_total) + " targets=";
  for (auto& ts : targets_) s += ts.t.name + (ts.alive ? "" : "(dropped)") + ",";
  if (!targets_.empty()) s.pop_back();
  return s;
}

}  // namespace makuo
