// A hybrid logical clock: wall-clock nanoseconds that never go back and pass every value this
// node has seen from others (heartbeats, versions it applied). It orders concurrent versions
// only (version_vector.hpp): a change made after this node saw another gets a later value even
// when its own wall clock is behind. A value that lies further ahead of our wall clock than
// kMaxAhead is not taken (a peer whose clock is off by hours would otherwise drag every clock of
// the cluster along, and once ahead a hybrid clock never comes back). Wall time is a parameter
// so that tests drive it.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>

namespace makuo {

class HybridClock {
 public:
  using WallFn = std::function<int64_t()>;
  static constexpr int64_t kMaxAhead = std::chrono::nanoseconds(std::chrono::minutes(1)).count();

  explicit HybridClock(WallFn wall);
  // The value of a change made now: later than every value issued or observed.
  uint64_t tick();
  // A value seen from elsewhere. Returns false when it was too far ahead to be taken.
  bool observe(uint64_t remote);
  // At least this (a restart: what the index holds).
  void raise_to(uint64_t v) { last_ = std::max(last_, v); }
  uint64_t last() const { return last_; }
  int64_t wall() const { return wall_(); }

 private:
  WallFn wall_;
  uint64_t last_ = 0;
};

}  // namespace makuo
