// The two clocks of the project: a monotonic one for timers and timeouts (time is passed into
// the protocol state machines, never read by them), and the wall clock that journal records,
// tombstones and heartbeats carry. Nothing correct depends on wall clocks agreeing.
#pragma once
#include <time.h>

#include <chrono>
#include <cstdint>

namespace makuo {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;
using namespace std::chrono_literals;

// Wall-clock time in ns.
inline int64_t realtime_ns() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

}  // namespace makuo
