#include "sync/watcher.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace makuo {
namespace {

namespace fs = std::filesystem;
using journal::Op;

class WatchedTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/makuo-watcher-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    base_ = root_ + "/base";
    fs::create_directories(base_ + "/d/sub");
    writer_ = std::make_unique<journal::Writer>(root_ + "/journal", "t");
    ASSERT_EQ(writer_->open(), 0);
    reader_ = std::make_unique<journal::Reader>(root_ + "/journal");
    ASSERT_EQ(reader_->open(), 0);
    watcher_ = std::make_unique<Watcher>(base_, *writer_);
    ASSERT_EQ(watcher_->start(), 0);
  }
  void TearDown() override {
    watcher_.reset();
    fs::remove_all(root_);
  }
  // What the watcher recorded since the last call (the events are queued by the time the
  // system calls that made them return).
  std::vector<journal::Record> drain() {
    watcher_->on_readable(Clock::now());
    std::vector<journal::Record> out;
    std::vector<std::string> warnings;
    reader_->read(out, warnings);
    return out;
  }
  static bool has(const std::vector<journal::Record>& v, Op op, const std::string& path) {
    return std::any_of(v.begin(), v.end(), [&](auto& r) { return r.op == op && r.path == path; });
  }

  std::string root_, base_;
  std::unique_ptr<journal::Writer> writer_;
  std::unique_ptr<journal::Reader> reader_;
  std::unique_ptr<Watcher> watcher_;
};

// Our receiver restores a directory's mtime alone after putting a file in it; the kernel
// reports that as IN_MODIFY on the directory. Taken for a file being written, it was recorded
// only at the next timer, under its old name if the directory was renamed meanwhile, and the
// daemon then pushed the renamed directory's subdirectories back as local changes.
TEST_F(WatchedTree, ADirectoryWhoseMtimeAloneIsSetIsRecordedAtOnce) {
  drain();
  int dfd = open((base_ + "/d/sub").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  timespec t[2] = {{0, UTIME_OMIT}, {1000000, 0}};
  ASSERT_EQ(futimens(dfd, t), 0);
  close(dfd);
  auto recs = drain();
  EXPECT_TRUE(has(recs, Op::Setattr, "d/sub"));
  watcher_->on_timer(Clock::now());
  recs = drain();
  EXPECT_TRUE(recs.empty()) << recs.size() << " record(s) at the timer, first "
                            << journal::to_string(recs.front().op) << " " << recs.front().path;
}

TEST_F(WatchedTree, AFileOpenForWritingIsRecordedUnderTheNameItHasWhenTheTimerComes) {
  int fd = open((base_ + "/d/sub/log").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "x", 1), 1);
  int fd2 = open((base_ + "/d/other").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd2, 0);
  ASSERT_EQ(write(fd2, "y", 1), 1);
  drain();
  ASSERT_EQ(rename((base_ + "/d").c_str(), (base_ + "/e").c_str()), 0);
  ASSERT_EQ(rename((base_ + "/e/other").c_str(), (base_ + "/e/moved").c_str()), 0);
  drain();
  watcher_->on_timer(Clock::now());
  auto recs = drain();
  EXPECT_TRUE(has(recs, Op::Write, "e/sub/log"));
  EXPECT_TRUE(has(recs, Op::Write, "e/moved"));
  EXPECT_FALSE(has(recs, Op::Write, "d/sub/log"));
  EXPECT_FALSE(has(recs, Op::Write, "e/other"));
  close(fd);
  close(fd2);
}

}  // namespace
}  // namespace makuo
