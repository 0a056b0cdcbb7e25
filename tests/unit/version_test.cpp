// Version vectors (descends, concurrent, merge, bump, bounded size) and the hybrid clock.
#include <gtest/gtest.h>

#include "sync/hybrid_clock.hpp"
#include "sync/version_vector.hpp"

namespace makuo {
namespace {

VersionVector vv(std::initializer_list<std::pair<const char*, uint64_t>> dots) {
  std::vector<Dot> d;
  for (auto& [n, c] : dots) d.push_back({node_key(n), c});
  return VersionVector(std::move(d));
}

TEST(VersionVector, ComparesByDescent) {
  EXPECT_EQ(compare(vv({}), vv({})), Order::Equal);
  EXPECT_EQ(compare(vv({{"a", 1}}), vv({})), Order::After);
  EXPECT_EQ(compare(vv({}), vv({{"a", 1}})), Order::Before);
  EXPECT_EQ(compare(vv({{"a", 2}, {"b", 1}}), vv({{"a", 1}, {"b", 1}})), Order::After);
  EXPECT_EQ(compare(vv({{"a", 2}}), vv({{"a", 1}, {"b", 1}})), Order::Concurrent);
  EXPECT_EQ(compare(vv({{"a", 1}, {"b", 1}}), vv({{"b", 1}, {"a", 1}})), Order::Equal);
  EXPECT_EQ(compare(vv({{"a", 1}}), vv({{"b", 1}})), Order::Concurrent);
}

TEST(VersionVector, MergeDescendsFromBoth) {
  VersionVector a = vv({{"a", 5}, {"b", 1}}), b = vv({{"b", 3}, {"c", 2}});
  VersionVector m = VersionVector::merge(a, b);
  EXPECT_EQ(m, vv({{"a", 5}, {"b", 3}, {"c", 2}}));
  EXPECT_EQ(compare(m, a), Order::After);
  EXPECT_EQ(compare(m, b), Order::After);
  EXPECT_EQ(VersionVector::merge(a, a), a);
}

TEST(VersionVector, ABumpPassesItsOwnCounterEvenWithAClockThatWentBack) {
  PathVersion v = bump({}, "n1", 1000);
  EXPECT_EQ(v.clock(), 1000u);
  PathVersion w = bump(v, "n1", 10);  // the clock went back: the counter still grows
  EXPECT_EQ(w.clock(), 1001u);
  EXPECT_EQ(compare(w.vv, v.vv), Order::After);
  PathVersion x = bump(w, "n2", 5);
  EXPECT_EQ(x.origin, "n2");
  EXPECT_EQ(x.clock(), 5u);
  EXPECT_EQ(compare(x.vv, w.vv), Order::After);
}

TEST(VersionVector, ConcurrentVersionsAreOrderedByClockThenNodeName) {
  PathVersion a = bump({}, "alpha", 200), b = bump({}, "beta", 100);
  EXPECT_GT(concurrent_winner(a, b), 0);
  EXPECT_LT(concurrent_winner(b, a), 0);
  PathVersion c = bump({}, "beta", 200);
  EXPECT_LT(concurrent_winner(a, c), 0);  // same clock: "beta" > "alpha"
  EXPECT_EQ(concurrent_winner(a, a), 0);
}

TEST(VersionVector, GrowsToABoundForgettingTheOldestChanges) {
  PathVersion v;
  for (uint64_t i = 1; i <= VersionVector::kMaxDots + 10; ++i)
    v = bump(v, "node" + std::to_string(i), i * 10);
  EXPECT_EQ(v.vv.size(), VersionVector::kMaxDots);
  EXPECT_EQ(v.vv.get(node_key("node1")), 0u);  // the oldest went
  EXPECT_EQ(v.clock(), (VersionVector::kMaxDots + 10) * 10);
}

TEST(HybridClock, NeverGoesBackAndPassesWhatItSaw) {
  int64_t wall = 1000;
  HybridClock c([&] { return wall; });
  EXPECT_EQ(c.tick(), 1000u);
  EXPECT_EQ(c.tick(), 1001u);  // same wall time: still later
  wall = 500;                  // the wall clock stepped back
  EXPECT_EQ(c.tick(), 1002u);
  EXPECT_TRUE(c.observe(5000));  // a peer ahead of us (within the bound)
  EXPECT_EQ(c.tick(), 5001u);
  wall = 9000;
  EXPECT_EQ(c.tick(), 9000u);
}

TEST(HybridClock, AValueFarAheadOfTheWallIsNotTaken) {
  int64_t wall = 1'000'000'000'000;
  HybridClock c([&] { return wall; });
  EXPECT_FALSE(c.observe(uint64_t(wall + HybridClock::kMaxAhead + 1)));
  EXPECT_EQ(c.tick(), uint64_t(wall));
  EXPECT_TRUE(c.observe(uint64_t(wall + HybridClock::kMaxAhead)));
  EXPECT_EQ(c.tick(), uint64_t(wall + HybridClock::kMaxAhead + 1));
}

}  // namespace
}  // namespace makuo
