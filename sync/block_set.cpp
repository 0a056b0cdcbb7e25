#include "sync/block_set.hpp"

#include <bit>

namespace makuo {

const BlockSet::Page* BlockSet::page(uint64_t n) const {
  if (n == last_n_) return last_;
  auto it = pages_.find(n);
  if (it == pages_.end()) return nullptr;
  last_n_ = n;
  last_ = it->second.get();
  return last_;
}

bool BlockSet::test(uint64_t b) const {
  const Page* p = page(b / kPageBlocks);
  uint64_t i = b % kPageBlocks;
  return p && ((*p)[i / 64] >> (i % 64)) & 1;
}

void BlockSet::set(uint64_t b) {
  uint64_t n = b / kPageBlocks;
  Page* p = const_cast<Page*>(page(n));
  if (!p) {
    auto& slot = pages_[n];
    slot = std::make_unique<Page>();
    p = slot.get();
    last_n_ = n;
    last_ = p;
  }
  uint64_t i = b % kPageBlocks;
  (*p)[i / 64] |= 1ull << (i % 64);
}

uint64_t BlockSet::next_missing(uint64_t b, uint64_t end) const {
  while (b < end) {
    const Page* p = page(b / kPageBlocks);
    if (!p) return b;
    uint64_t i = b % kPageBlocks;
    uint64_t w = ~(*p)[i / 64] >> (i % 64);  // missing blocks from b to the end of its word
    if (w) return std::min(end, b + uint64_t(std::countr_zero(w)));
    b += 64 - i % 64;
  }
  return end;
}

uint64_t BlockSet::next_present(uint64_t b, uint64_t end) const {
  while (b < end) {
    const Page* p = page(b / kPageBlocks);
    if (!p) {
      b = (b / kPageBlocks + 1) * kPageBlocks;
      continue;
    }
    uint64_t i = b % kPageBlocks;
    uint64_t w = (*p)[i / 64] >> (i % 64);
    if (w) return std::min(end, b + uint64_t(std::countr_zero(w)));
    b += 64 - i % 64;
  }
  return end;
}

}  // namespace makuo
