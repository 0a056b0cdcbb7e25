#include "state/journal.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace makuo::journal {
namespace {

std::vector<Record> samples() {
  return {{Op::Create, 1, "a", ""},
          {Op::Write, 2, "dir/file name", ""},
          {Op::Rename, 3, "x/old", "y/new"},
          {Op::Rescan, -4, "", ""},
          {Op::Xattr, 5, std::string(kMaxPathLen, 'p'), ""}};
}

TEST(JournalCodec, RoundTrips) {
  std::vector<uint8_t> b;
  for (auto& r : samples()) encode(b, r);
  std::vector<Record> out;
  size_t used = 0;
  ASSERT_EQ(decode(b, out, used), Decoded::Ok);
  EXPECT_EQ(used, b.size());
  EXPECT_EQ(out, samples());
}

TEST(JournalCodec, EveryTruncationIsShortAndKeepsWholeRecords) {
  std::vector<uint8_t> b;
  std::vector<size_t> ends;
  for (auto& r : samples()) {
    encode(b, r);
    ends.push_back(b.size());
  }
  for (size_t n = 0; n < b.size(); ++n) {
    std::vector<Record> out;
    size_t used = 0;
    Decoded d = decode({b.data(), n}, out, used);
    size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= n) ++whole;
    ASSERT_EQ(out.size(), whole) << n;
    ASSERT_EQ(used, whole ? ends[whole - 1] : 0) << n;
    ASSERT_EQ(d, used == n ? Decoded::Ok : Decoded::Short) << n;
  }
}

TEST(JournalCodec, AnyFlippedBitIsCaught) {
  std::vector<uint8_t> b;
  encode(b, {Op::Rename, 7, "from/here", "to/there"});
  for (size_t i = 0; i < b.size() * 8; ++i) {
    auto c = b;
    c[i / 8] ^= uint8_t(1u << (i % 8));
    std::vector<Record> out;
    size_t used = 0;
    Decoded d = decode(c, out, used);
    ASSERT_TRUE(out.empty()) << i;
    ASSERT_NE(d, Decoded::Ok) << i;
  }
}

class JournalDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/makuo-journal-test.XXXXXX";
    dir_ = mkdtemp(t);
    jdir_ = dir_ + "/journal";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  size_t segments() {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(jdir_))
      if (e.path().extension() == ".mkj") ++n;
    return n;
  }
  std::string dir_, jdir_;
};

TEST_F(JournalDir, ReadsWhatWasAppendedOnceAndResumesAtTheCursor) {
  Writer w(jdir_, "t");
  ASSERT_EQ(w.open(), 0);
  for (auto& r : samples()) ASSERT_EQ(w.append(r), 0);
  Reader::Position pos;
  {
    Reader r(jdir_);
    ASSERT_EQ(r.open(), 0);
    std::vector<Record> got;
    std::vector<std::string> warn;
    pos = r.read(got, warn);
    EXPECT_EQ(got, samples());
    EXPECT_TRUE(warn.empty());
    got.clear();
    r.read(got, warn);
    EXPECT_TRUE(got.empty());
    EXPECT_GT(r.backlog(), 0u);
    // not committed: a restart reads everything again
  }
  {
    Reader r(jdir_);
    ASSERT_EQ(r.open(), 0);
    std::vector<Record> got;
    std::vector<std::string> warn;
    auto p2 = r.read(got, warn);
    EXPECT_EQ(got.size(), samples().size());
    ASSERT_EQ(r.commit(p2), 0);
    EXPECT_EQ(r.backlog(), 0u);
  }
  ASSERT_EQ(w.append({Op::Unlink, 9, "later", ""}), 0);
  Reader r(jdir_);
  ASSERT_EQ(r.open(), 0);
  std::vector<Record> got;
  std::vector<std::string> warn;
  r.read(got, warn);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "later");
}

TEST_F(JournalDir, FinishedSegmentsOfGoneWritersAreDeletedLiveOnesKept) {
  auto w = std::make_unique<Writer>(jdir_, "t", 100);  // a new segment every few records
  ASSERT_EQ(w->open(), 0);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(w->append({Op::Write, i, "f" + std::to_string(i), ""}), 0);
  size_t before = segments();
  EXPECT_GT(before, 3u);
  Reader r(jdir_);
  ASSERT_EQ(r.open(), 0);
  std::vector<Record> got;
  std::vector<std::string> warn;
  auto pos = r.read(got, warn);
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got[size_t(i)].time_ns, i);  // segments in order
  ASSERT_EQ(r.commit(pos), 0);
  EXPECT_EQ(segments(), 1u);  // the writer still holds its current one
  w.reset();
  ASSERT_EQ(r.commit(pos), 0);
  EXPECT_EQ(segments(), 0u);
}

TEST_F(JournalDir, TornTailOfADeadWriterIsSkippedWithAWarning) {
  {
    Writer w(jdir_, "t");
    ASSERT_EQ(w.open(), 0);
    ASSERT_EQ(w.append({Op::Write, 1, "whole", ""}), 0);
  }
  std::string seg;
  for (auto& e : std::filesystem::directory_iterator(jdir_))
    if (e.path().extension() == ".mkj") seg = e.path();
  std::ofstream(seg, std::ios::app) << "\x40\x00\x00\x00garbage";
  Reader r(jdir_);
  ASSERT_EQ(r.open(), 0);
  std::vector<Record> got;
  std::vector<std::string> warn;
  auto pos = r.read(got, warn);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(warn.size(), 1u);
  EXPECT_NE(warn[0].find("not a whole record"), std::string::npos);
  ASSERT_EQ(r.commit(pos), 0);
  EXPECT_EQ(segments(), 0u);
}

TEST_F(JournalDir, ALiveWritersPartialRecordIsWaitedFor) {
  Writer w(jdir_, "t");
  ASSERT_EQ(w.open(), 0);
  ASSERT_EQ(w.append({Op::Write, 1, "whole", ""}), 0);
  std::string seg;
  for (auto& e : std::filesystem::directory_iterator(jdir_))
    if (e.path().extension() == ".mkj") seg = e.path();
  std::ofstream(seg, std::ios::app) << "\x40\x00";
  Reader r(jdir_);
  ASSERT_EQ(r.open(), 0);
  std::vector<Record> got;
  std::vector<std::string> warn;
  r.read(got, warn);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_TRUE(warn.empty());
}

std::string only_segment(const std::string& dir) {
  std::string seg;
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".mkj") seg = e.path();
  return seg;
}

TEST_F(JournalDir, DamageBetweenRecordsIsSkippedToTheNextWholeOneEvenWhileTheWriterLives) {
  Writer w(jdir_, "t");
  ASSERT_EQ(w.open(), 0);
  ASSERT_EQ(w.append({Op::Write, 1, "before", ""}), 0);
  std::ofstream(only_segment(jdir_), std::ios::app) << std::string(3000, '\xff');
  ASSERT_EQ(w.append({Op::Write, 2, "after", ""}), 0);
  Reader r(jdir_);
  ASSERT_EQ(r.open(), 0);
  std::vector<Record> got;
  std::vector<std::string> warn;
  r.read(got, warn);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].path, "after");
  ASSERT_EQ(warn.size(), 1u);
  EXPECT_NE(warn[0].find("3000 bytes"), std::string::npos) << warn[0];
}

TEST_F(JournalDir, DamageLongerThanAReadWindowIsSkippedToo) {
  Writer w(jdir_, "t");
  ASSERT_EQ(w.open(), 0);
  ASSERT_EQ(w.append({Op::Write, 1, "before", ""}), 0);
  std::ofstream(only_segment(jdir_), std::ios::app) << std::string(100000, '\xff');
  ASSERT_EQ(w.append({Op::Write, 2, "after", ""}), 0);
  Reader r(jdir_);
  ASSERT_EQ(r.open(), 0);
  std::vector<Record> got;
  std::vector<std::string> warn;
  for (int i = 0; i < 10 && got.size() < 2; ++i) r.read(got, warn, 4096);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].path, "after");
}

// A write that fails half-way (here: the file size limit; in life: a full disk) leaves no torn
// record, and the change it was for is covered by a Rescan written once there is room.
TEST_F(JournalDir, ARecordThatCannotBeWrittenIsCutOffAndARescanFollowsWhenThereIsRoom) {
  Writer w(jdir_, "t");
  ASSERT_EQ(w.open(), 0);
  ASSERT_EQ(w.append({Op::Write, 1, "fits", ""}), 0);
  auto seg = only_segment(jdir_);
  auto size = std::filesystem::file_size(seg);
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = size + 20;  // a record gets 20 bytes in, then fails; a Rescan does not fit
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  int err = w.append({Op::Write, 2, std::string(200, 'x'), ""});
  int err2 = w.append({Op::Unlink, 3, std::string(200, 'y'), ""});
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, SIG_DFL);
  EXPECT_NE(err, 0);  // a short write (ENOSPC), or EFBIG
  EXPECT_NE(err2, 0);
  EXPECT_TRUE(w.owed());
  EXPECT_EQ(std::filesystem::file_size(seg), size) << "the torn part was not cut off";
  ASSERT_EQ(w.sync(), 0);
  EXPECT_FALSE(w.owed());
  ASSERT_EQ(w.append({Op::Write, 4, "later", ""}), 0);
  Reader r(jdir_);
  ASSERT_EQ(r.open(), 0);
  std::vector<Record> got;
  std::vector<std::string> warn;
  r.read(got, warn);
  EXPECT_TRUE(warn.empty()) << warn[0];
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].path, "fits");
  EXPECT_EQ(got[1].op, Op::Rescan);
  EXPECT_EQ(got[1].path, "");
  EXPECT_EQ(got[2].path, "later");
}

}  // namespace
}  // namespace makuo::journal
