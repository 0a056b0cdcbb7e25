#include <gtest/gtest.h>

#include "sync/transport.hpp"

namespace makuo {
namespace {

TEST(Pacer, HoldsTheRateOverASecond) {
  Pacer p(1'000'000);  // -T 8
  TimePoint t{std::chrono::seconds(1)};
  uint64_t sent = 0;
  TimePoint end = t + 1s;
  while (t < end) {
    if (p.allow(1400, t)) {
      sent += 1400;
    } else {
      TimePoint next = p.next_send(t, 1400);
      ASSERT_GT(next, t);
      t = next;
    }
  }
  // one second's worth plus at most the initial burst allowance
  EXPECT_GE(sent, 990'000u);
  EXPECT_LE(sent, 1'000'000u + 5'000 + 16'384 + 1400);
}

TEST(Pacer, ZeroMeansUnpaced) {
  Pacer p(0);
  TimePoint t{};
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(p.allow(1400, t));
  EXPECT_EQ(p.next_send(t, 65507), t);
}

TEST(Pacer, AHeldSenderWakesForABatchNotForEachDatagram) {
  // 100 MB/s in 64 KiB batches: about 1500 wakeups a second, not 70,000, at the same rate.
  Pacer p(100'000'000);
  TimePoint t{std::chrono::seconds(1)};
  uint64_t sent = 0, wakeups = 0;
  TimePoint end = t + 1s;
  while (t < end) {
    if (p.allow(1400, t)) {
      sent += 1400;
    } else {
      TimePoint next = p.next_send(t, 65507);
      ASSERT_GT(next, t);
      t = next;
      ++wakeups;
    }
  }
  EXPECT_GE(sent, 99'000'000u);
  EXPECT_LE(sent, 100'000'000u + 500'000 + 16'384 + 65507 + 1400);
  EXPECT_LT(wakeups, 2000u);
}

}  // namespace
}  // namespace makuo
