// The receiving side of a push, answering: reports per entry, gaps in the stream, NACKs of
// missing blocks, batched into as few datagrams as they fit.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "sync/dir_digest.hpp"
#include "sync/fsops.hpp"
#include "sync/paths.hpp"
#include "sync/recv_helpers.hpp"
#include "sync/recv_session.hpp"

namespace makuo {

using namespace recv_detail;

void RecvSession::on_poll(const wire::Poll& p, TimePoint now, Transport& net) {
  if (ended_) return;
  last_activity_ = now;
  now_ = now;
  // Gaps in what the sender has sent once: whole files below sent_upto, and the blocks of the
  // file in flight below sent_offset (so that a large file is repaired while it streams).
  // Files below lowest_open are settled for every target in the sender's view: one we still
  // wait for was given up by the sender (it changed while being sent; a later push brings it).
  // Without this, this push's directories would never be finalized and answered.
  std::vector<uint32_t> abandoned;
  for (uint32_t idx : need_data_) {
    if (idx >= p.lowest_open) break;
    abandoned.push_back(idx);
  }
  for (uint32_t idx : abandoned) {
    drop_file(idx);
    resolve(idx, wire::Code::Failed, ESTALE);
  }
  if (!abandoned.empty()) maybe_finalize();
  wire::Nack nack{sid_, p.seq, {}};
  size_t used = wire::kHeaderSize + 10;
  if (received_ < total_) {
    // Manifest entries the sender has moved past that never arrived.
    while (next_missing_ < total_ && entries_.has(next_missing_)) ++next_missing_;
    if (next_missing_ < total_ && next_missing_ <= p.sent_upto)
      nack.files.push_back({next_missing_, {}});
  }
  for (uint32_t idx : need_data_) {
    if (idx > p.sent_upto || used > 1200) break;
    const wire::Entry& e = entry(idx);
    uint64_t nb = (e.size + block_size_ - 1) / block_size_;
    if (idx == p.sent_upto) nb = std::min<uint64_t>(nb, p.sent_offset / block_size_);
    if (nb == 0) break;
    wire::NackFile nf{idx, {}};
    auto it = files_.find(idx);
    if (it == files_.end()) {
      nf.ranges.push_back({0, uint32_t(nb)});
    } else {
      const RecvFile& f = it->second;
      uint64_t b = f.data.next_missing(0, nb);
      while (b < nb && nf.ranges.size() < 64) {
        uint64_t e = std::min(f.data.next_present(b, nb), b + UINT32_MAX);
        nf.ranges.push_back({uint32_t(b), uint32_t(e - b)});
        b = f.data.next_missing(e, nb);
      }
      if (nf.ranges.empty()) {
        if (idx == p.sent_upto) break;  // nothing missing yet in the file in flight
        // Every block is here but the last one's hash was never seen: ask for the last block.
        nf.ranges.push_back({uint32_t(nb - 1), 1});
      }
    }
    used += 6 + nf.ranges.size() * 8;
    nack.files.push_back(std::move(nf));
  }
  if (!nack.files.empty()) {
    wire::Bytes b;
    wire::encode(b, self_, nack);
    net.send(from_, b);
  }
  // Repeat final answers the sender may have lost, from where it is still waiting.
  uint32_t end = std::min(manifest_end_, std::min(total_, p.lowest_open + 65536));
  for (uint32_t i = p.lowest_open, n = 0; i < end && n < 150; ++i) {
    if (!entries_.has(i)) continue;
    const RecvEntries::Slot& slot = entries_.at(i);
    if (wire::is_final(slot.code, dry())) {
      reports_.push_back({i, slot.code, slot.err});
      ++n;
    } else if (slot.kind != wire::Kind::Dir) {
      break;
    }
  }
  // Directories are answered after everything else; repeat those answers in turns.
  if (finalized_ && !dirs_.empty()) {
    for (size_t n = 0; n < std::min<size_t>(dirs_.size(), 150); ++n) {
      uint32_t i = dirs_[dir_resend_++ % dirs_.size()];
      reports_.push_back({i, entries_.at(i).code, entries_.at(i).err});
    }
  }
  if (reports_.empty()) reports_.push_back({0, wire::Code::Unknown, 0});  // "still here"
  flush(now, net);
}

void RecvSession::flush(TimePoint now, Transport& net) {
  now_ = now;
  if (!gaps_.files.empty()) {
    gaps_.sid = sid_;
    gaps_.poll_seq = wire::kStreamGap;
    wire::Bytes b;
    wire::encode(b, self_, gaps_);
    net.send(from_, b);
    gaps_.files.clear();
  }
  if (!reports_.empty()) {
    wire::Report r{sid_, {}};
    for (size_t i = 0; i < reports_.size(); ++i) {
      r.items.push_back(reports_[i]);
      if (r.items.size() == 190 || i + 1 == reports_.size()) {
        wire::Bytes b;
        wire::encode(b, self_, r);
        net.send(from_, b);
        r.items.clear();
      }
    }
    reports_.clear();
  }
  if (del_next_ < del_chunks_.size() && now - del_sent_at_ >= 200ms) {
    wire::Bytes b;
    wire::encode(b, self_, del_chunks_[del_next_]);
    net.send(from_, b);
    del_sent_at_ = now;
  }
}

std::string RecvSession::describe() const {
  return "from=" + from_.str() + " sid=" + std::to_string(sid_) +
         " entries=" + std::to_string(received_) + "/" + std::to_string(total_) +
         " open_files=" + std::to_string(files_.size()) +
         " waiting=" + std::to_string(need_data_.size());
}

}  // namespace makuo
