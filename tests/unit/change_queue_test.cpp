#include "sync/change_queue.hpp"

#include <gtest/gtest.h>

namespace makuo {
namespace {

using journal::Op;
using journal::Record;

TimePoint at(int ms) {
  return TimePoint{} + std::chrono::milliseconds(1000 + ms);
}

std::vector<std::string> paths(const std::vector<Change>& v) {
  std::vector<std::string> out;
  for (auto& c : v) out.push_back(c.path + (c.from.empty() ? "" : "<-" + c.from));
  return out;
}

TEST(ChangeQueue, ABurstOfWritesToOneFileIsOneChange) {
  ChangeQueue q;
  for (int i = 0; i < 100; ++i) q.add({Op::Write, 0, "log/app.txt", ""}, at(i));
  EXPECT_EQ(paths(q.take()), std::vector<std::string>{"log/app.txt"});
  EXPECT_TRUE(q.empty());
}

TEST(ChangeQueue, DueAfterAQuietPeriodOrTheMaximumDelay) {
  ChangeQueue q(50ms, 500ms);
  EXPECT_EQ(q.due(), TimePoint::max());
  q.add({Op::Write, 0, "a", ""}, at(0));
  EXPECT_EQ(q.due(), at(50));
  q.add({Op::Write, 0, "a", ""}, at(30));
  EXPECT_EQ(q.due(), at(80));
  for (int t = 40; t < 1000; t += 10) q.add({Op::Write, 0, "a", ""}, at(t));
  EXPECT_EQ(q.due(), at(500));  // constant writes do not hold it back forever
}

TEST(ChangeQueue, NamesComingAndGoingTouchTheirDirectory) {
  ChangeQueue q;
  q.add({Op::Create, 0, "d/e/new", ""}, at(0));
  q.add({Op::Unlink, 0, "top", ""}, at(0));
  EXPECT_EQ(paths(q.take()), (std::vector<std::string>{"d/e/new", "d/e", "top"}));
}

TEST(ChangeQueue, EditorSaveSendsTheTargetAsContentAndTheTempAsGone) {
  ChangeQueue q;
  q.add({Op::Create, 0, "site/.index.html.swp", ""}, at(0));
  q.add({Op::Write, 0, "site/.index.html.swp", ""}, at(1));
  q.add({Op::Rename, 0, "site/.index.html.swp", "site/index.html"}, at(2));
  auto v = q.take();
  // The receivers never had the temporary: no rename hint, content goes.
  EXPECT_EQ(paths(v),
            (std::vector<std::string>{"site/index.html", "site", "site/.index.html.swp"}));
}

TEST(ChangeQueue, RenameOfAnUnchangedPathCarriesItsSourceAndGoesFirst) {
  ChangeQueue q;
  q.add({Op::Write, 0, "other", ""}, at(0));
  q.add({Op::Rename, 0, "old/name", "new/name"}, at(1));
  auto v = q.take();
  EXPECT_EQ(paths(v),
            (std::vector<std::string>{"new/name<-old/name", "other", "old/name", "old", "new"}));
  EXPECT_TRUE(v[0].subtree);
}

TEST(ChangeQueue, RenameChainsKeepTheOriginalSource) {
  ChangeQueue q;
  q.add({Op::Rename, 0, "a", "b"}, at(0));
  q.add({Op::Rename, 0, "b", "c"}, at(1));
  EXPECT_EQ(paths(q.take()), (std::vector<std::string>{"c<-a", "a", "b"}));
}

TEST(ChangeQueue, PendingChangesBelowARenamedDirectoryMoveWithIt) {
  ChangeQueue q;
  q.add({Op::Write, 0, "d/x", ""}, at(0));
  q.add({Op::Write, 0, "d x", ""}, at(0));  // sorts between "d" and "d/x"
  q.add({Op::Write, 0, "d/sub/y", ""}, at(0));
  q.add({Op::Rename, 0, "d", "e"}, at(1));
  auto p = paths(q.take());
  EXPECT_EQ(p, (std::vector<std::string>{"e<-d", "e/x", "d x", "e/sub/y", "d"}));
}

TEST(ChangeQueue, OurTemporariesTheBaseItselfAndBadPathsNeverTravel) {
  ChangeQueue q;
  q.add({Op::Write, 0, ".makuo-tmp-1234", ""}, at(0));
  q.add({Op::Write, 0, "d/.makuo-tmp-99/x", ""}, at(0));
  q.add({Op::Setattr, 0, "", ""}, at(0));
  q.add({Op::Write, 0, "a/../../etc/passwd", ""}, at(0));
  q.add({Op::Write, 0, "/etc/passwd", ""}, at(0));
  q.add({Op::Rename, 0, "x", ".makuo-tmp-5"}, at(0));
  EXPECT_EQ(paths(q.take()), std::vector<std::string>{"x"});
}

TEST(ChangeQueue, RescanMarksASubtree) {
  ChangeQueue q;
  q.add({Op::Write, 0, "d", ""}, at(0));
  q.add({Op::Rescan, 0, "d", ""}, at(0));
  auto v = q.take();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].subtree);
}

}  // namespace
}  // namespace makuo
