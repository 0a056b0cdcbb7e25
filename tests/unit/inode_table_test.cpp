#include "fs/inode_table.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

namespace makuo::fs {
namespace {

struct stat fake(ino_t ino) {
  struct stat st {};
  st.st_dev = 42;
  st.st_ino = ino;
  return st;
}

int path_fd() {
  return open("/", O_PATH | O_CLOEXEC);
}

TEST(InodeTable, CrowdingIsReportedOnceUntilHandled) {
  InodeTable t(path_fd());
  int calls = 0;
  t.on_crowded(3, [&] { ++calls; });
  for (ino_t k = 1; k <= 3; ++k) t.add_lookup(path_fd(), fake(k));
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(t.crowded());
  t.add_lookup(path_fd(), fake(4));
  t.add_lookup(path_fd(), fake(5));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(t.crowded());
  t.crowding_handled();
  EXPECT_FALSE(t.crowded());
  t.add_lookup(path_fd(), fake(6));
  EXPECT_EQ(calls, 2);
  t.crowding_handled();
  t.report_exhausted();  // below or above the mark, a failed open asks for room
  EXPECT_EQ(calls, 3);
}

TEST(InodeTable, LeastRecentFollowsTheLastLookupNotTheFirst) {
  InodeTable t(path_fd());
  int fds[4];
  for (ino_t k = 0; k < 4; ++k) fds[k] = t.add_lookup(path_fd(), fake(k + 10)).fd;
  int again = path_fd();
  t.add_lookup(again, fake(10));  // looked up again: now the most recent; the copy is closed
  EXPECT_EQ(fcntl(again, F_GETFD), -1);
  auto oldest = t.least_recent(2);
  std::sort(oldest.begin(), oldest.end());
  std::vector<int> want{fds[1], fds[2]};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(oldest, want);
  EXPECT_EQ(t.least_recent(99).size(), 4u);
  EXPECT_EQ(t.size(), 4u);
}

}  // namespace
}  // namespace makuo::fs
