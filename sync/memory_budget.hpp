// What the receiving side of a daemon may hold in memory for the pushes in progress, all of
// them together. Entries, block maps and write buffers are taken from it as they arrive, so a
// peer that claims four million entries or a terabyte file costs what it actually sent, and
// no more than this in all: what would go over it is refused with ENOMEM, with a reason in the
// log, instead of growing the daemon until the kernel kills it.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace makuo {

class MemoryBudget {
 public:
  explicit MemoryBudget(size_t limit) : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  bool take(size_t n) {
    if (n > limit_ - used_) {
      ++refusals_;
      return false;
    }
    used_ += n;
    return true;
  }
  void give(size_t n) { used_ -= std::min(n, used_); }
  size_t used() const { return used_; }
  size_t limit() const { return limit_; }
  uint64_t refusals() const { return refusals_; }

 private:
  size_t limit_, used_ = 0;
  uint64_t refusals_ = 0;
};

}  // namespace makuo
