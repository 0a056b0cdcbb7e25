#include "sync/membership.hpp"

#include <gtest/gtest.h>

namespace makuo {
namespace {

TEST(Membership, JoinsRefreshesAndExpires) {
  Membership m(3500ms);
  TimePoint t0{};
  EXPECT_TRUE(m.announce(1, {"web2", "0.1.0", 0}, {1, 5000}, t0));
  EXPECT_FALSE(m.announce(1, {"web2", "0.1.0", 0}, {1, 5000}, t0 + 1s));
  EXPECT_TRUE(m.announce(2, {"web1", "0.1.0", 0}, {2, 5000}, t0 + 1s));
  auto s = m.sorted();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "web1");
  EXPECT_TRUE(m.expire(t0 + 4s).empty());
  m.touch(2, t0 + 4s);
  auto gone = m.expire(t0 + 5s);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].name, "web2");
  EXPECT_EQ(m.find_by_name("web1")->id, 2u);
  EXPECT_TRUE(m.remove(2));
  EXPECT_EQ(m.size(), 0u);
}

}  // namespace
}  // namespace makuo
