#include "sync/hybrid_clock.hpp"

#include <algorithm>

namespace makuo {

HybridClock::HybridClock(WallFn wall) : wall_(std::move(wall)) {}

uint64_t HybridClock::tick() {
  int64_t w = wall_();
  last_ = std::max(last_ + 1, w > 0 ? uint64_t(w) : 0);
  return last_;
}

bool HybridClock::observe(uint64_t remote) {
  int64_t w = wall_();
  if (remote > uint64_t(std::max<int64_t>(w, 0)) + uint64_t(kMaxAhead)) return false;
  last_ = std::max(last_, remote);
  return true;
}

}  // namespace makuo
