// One file being received, put together from its blocks in whatever order they come (the first
// pass, repairs, coded repairs): written into its temporary through a staging buffer (one
// pwrite per kStage bytes, not one per datagram), hashed as the blocks come in order, and
// rebuilt from a coded repair when exactly one block of its group is missing. Knows nothing of
// sessions, memory budgets or directories (RecvSession does).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "sync/block_set.hpp"
#include "sync/fsops.hpp"
#include "sync/hash.hpp"
#include "sync/wire.hpp"

namespace makuo {

class FileAssembly {
 public:
  static constexpr size_t kStage = 128 << 10;

  FileAssembly(uint64_t size, uint32_t block_size);
  // The temporary it writes into (opened read-write).
  void attach(Fd fd) { fd_ = std::move(fd); }

  uint64_t blocks_total() const { return nblocks_; }
  // The bytes block b holds (the last one may be short).
  size_t block_bytes(uint64_t b) const;
  bool has(uint64_t b) const { return blocks_.test(b); }
  // The first block not yet seen in the first pass (which sends in order: a jump is a loss).
  uint64_t next_expected() const { return next_expected_; }

  // Block b's bytes (block_bytes(b) of them). written: bytes that reached the file. False when
  // it was here already. 0 or errno.
  int add(uint64_t b, std::span<const uint8_t> payload, bool& fresh, uint64_t& written);
  void set_hash(const wire::Hash128& h) {
    hash_ = h;
    hash_known_ = true;
  }
  // Every block here, and the whole-file hash known.
  bool complete() const { return have_ == nblocks_ && hash_known_; }

  // A coded repair: payload is the XOR of the full blocks base + i for each bit i of mask.
  // Rebuilt: the one missing block of them is in out, its number in missing. Useless: two or
  // more are missing, or the group reaches the last block. Nothing: none is missing.
  enum class Rebuild { Rebuilt, Useless, Nothing, Failed };
  Rebuild rebuild(uint64_t base, uint64_t mask, std::span<const uint8_t> payload, uint64_t& missing,
                  std::vector<uint8_t>& out, int& err);

  // Writes what is staged. 0 or errno.
  int flush(uint64_t& written);
  // Hashed in order up to here; the rest (after repairs) is hashed from the file.
  uint64_t hashed_upto() const { return hashed_upto_; }
  Hasher& hasher() { return hasher_; }
  const wire::Hash128& hash() const { return hash_; }
  int fd() const { return fd_.get(); }

  // The first block from first on that is missing (or present) before end.
  uint64_t next_missing(uint64_t first, uint64_t end) const {
    return blocks_.next_missing(first, end);
  }
  uint64_t next_present(uint64_t first, uint64_t end) const {
    return blocks_.next_present(first, end);
  }
  // What it holds in memory.
  size_t memory() const { return sizeof(*this) + stage_.capacity() + blocks_.memory(); }

 private:
  int read_block(uint64_t b, uint8_t* out) const;

  Fd fd_;
  uint64_t size_;
  uint32_t block_size_;
  uint64_t nblocks_;
  BlockSet blocks_;
  uint64_t have_ = 0, hashed_upto_ = 0, next_expected_ = 0;
  bool hash_known_ = false;
  wire::Hash128 hash_{};
  Hasher hasher_;
  std::vector<uint8_t> stage_;
  uint64_t stage_off_ = 0;
  std::vector<uint8_t> block_buf_;
};

}  // namespace makuo
