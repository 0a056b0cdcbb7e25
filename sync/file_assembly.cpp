#include "sync/file_assembly.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace makuo {

FileAssembly::FileAssembly(uint64_t size, uint32_t block_size)
    : size_(size), block_size_(block_size), nblocks_((size + block_size - 1) / block_size) {}

size_t FileAssembly::block_bytes(uint64_t b) const {
  uint64_t off = b * block_size_;
  return off >= size_ ? 0 : size_t(std::min<uint64_t>(block_size_, size_ - off));
}

int FileAssembly::add(uint64_t b, std::span<const uint8_t> payload, bool& fresh,
                      uint64_t& written) {
  fresh = false;
  written = 0;
  if (blocks_.test(b)) return 0;
  uint64_t off = b * block_size_;
  if (!stage_.empty() && off != stage_off_ + stage_.size())
    if (int e = flush(written)) return e;
  if (stage_.empty()) {
    stage_off_ = off;
    // Room for the last block that takes it past kStage: the buffer never grows twofold.
    stage_.reserve(size_t(std::min<uint64_t>(kStage + block_size_, size_ - off)));
  }
  stage_.insert(stage_.end(), payload.begin(), payload.end());
  if (stage_.size() >= kStage) {
    uint64_t w = 0;
    if (int e = flush(w)) return e;
    written += w;
  }
  blocks_.set(b);
  ++have_;
  fresh = true;
  next_expected_ = std::max(next_expected_, b + 1);
  if (off == hashed_upto_) {
    hasher_.update(payload);
    hashed_upto_ += payload.size();
  }
  return 0;
}

int FileAssembly::flush(uint64_t& written) {
  written = 0;
  if (stage_.empty()) return 0;
  ssize_t n = pwrite(fd_.get(), stage_.data(), stage_.size(), off_t(stage_off_));
  if (n != ssize_t(stage_.size())) return n < 0 ? errno : ENOSPC;
  written = stage_.size();
  // Start writeback of every 8 MiB as it fills, so that the commit's flush finds little to do.
  constexpr uint64_t kChunk = 8 << 20;
  uint64_t end = stage_off_ + stage_.size();
  if (end / kChunk != stage_off_ / kChunk)
    sync_file_range(fd_.get(), off_t((end / kChunk - 1) * kChunk), off_t(kChunk),
                    SYNC_FILE_RANGE_WRITE);
  stage_.clear();
  return 0;
}

// A block this file has: from the staged writes, or from the temporary.
int FileAssembly::read_block(uint64_t b, uint8_t* out) const {
  uint64_t off = b * block_size_;
  if (off >= stage_off_ && off + block_size_ <= stage_off_ + stage_.size()) {
    std::memcpy(out, stage_.data() + (off - stage_off_), block_size_);
    return 0;
  }
  ssize_t n = pread(fd_.get(), out, block_size_, off_t(off));
  if (n == ssize_t(block_size_)) return 0;
  return n < 0 ? errno : EIO;
}

FileAssembly::Rebuild FileAssembly::rebuild(uint64_t base, uint64_t mask,
                                            std::span<const uint8_t> payload, uint64_t& missing,
                                            std::vector<uint8_t>& out, int& err) {
  if (payload.size() != block_size_) return Rebuild::Useless;
  int nmissing = 0;
  for (unsigned i = 0; i < 64; ++i) {
    if (!((mask >> i) & 1)) continue;
    uint64_t b = base + i;
    if (b + 1 >= nblocks_) return Rebuild::Useless;  // full blocks only, never the last
    if (!blocks_.test(b)) {
      missing = b;
      // Two or more missing here: no use; the next poll's answer asks for them.
      if (++nmissing > 1) return Rebuild::Useless;
    }
  }
  if (nmissing == 0) return Rebuild::Nothing;
  out.assign(payload.begin(), payload.end());
  block_buf_.resize(block_size_);
  for (unsigned i = 0; i < 64; ++i) {
    uint64_t b = base + i;
    if (!((mask >> i) & 1) || b == missing) continue;
    if ((err = read_block(b, block_buf_.data()))) return Rebuild::Failed;
    wire::xor_into(out, block_buf_);
  }
  return Rebuild::Rebuilt;
}

}  // namespace makuo
