// Which blocks of a file being received have arrived. A bitmap in pages of 8192 blocks, each
// allocated when a block of its range first arrives: a file claimed to be huge costs what
// arrived of it, and the gaps before a page that was never touched are found without walking
// them bit by bit.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

namespace makuo {

class BlockSet {
 public:
  static constexpr uint64_t kPageBlocks = 8192;
  static constexpr size_t kPageBytes = kPageBlocks / 8;

  bool test(uint64_t b) const;
  // Setting b allocates a page (kPageBytes more).
  bool needs_page(uint64_t b) const { return !page(b / kPageBlocks); }
  void set(uint64_t b);
  // The first block in [b, end) that has not arrived, or end.
  uint64_t next_missing(uint64_t b, uint64_t end) const;
  // The first block in [b, end) that has arrived, or end.
  uint64_t next_present(uint64_t b, uint64_t end) const;
  size_t memory() const { return pages_.size() * (kPageBytes + 32); }

 private:
  using Page = std::array<uint64_t, kPageBlocks / 64>;
  const Page* page(uint64_t n) const;
  std::unordered_map<uint64_t, std::unique_ptr<Page>> pages_;
  // Blocks mostly arrive in order: the page of the last one answers most look-ups.
  mutable uint64_t last_n_ = UINT64_MAX;
  mutable Page* last_ = nullptr;
};

}  // namespace makuo
