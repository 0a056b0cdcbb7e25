// The tree index: its record codec, persistence across restarts and crashes, the version
// bookkeeping that conflict detection relies on, and the start-up rescan.
#include "sync/tree_index.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "sync/fsops.hpp"
#include "sync/rescan.hpp"

namespace makuo {
namespace {

namespace fs = std::filesystem;

std::vector<IndexRecord> samples() {
  IndexRecord put;
  put.op = IndexRecord::Op::Put;
  put.path = "dir/file name";
  put.entry.kind = wire::Kind::File;
  put.entry.mode = 0644;
  put.entry.uid = 1000;
  put.entry.gid = 100;
  put.entry.size = 12345;
  put.entry.mtime_ns = 1'700'000'000'123'456'789LL;
  put.entry.hash = wire::Hash128{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  put.entry.ancestors = {{1'600'000'000'000'000'000LL, 10}, {5, 6}};
  put.entry.origin = "web1";
  IndexRecord dir;
  dir.op = IndexRecord::Op::Put;
  for (int i = 0; i < 16; ++i) dir.path += std::string(i ? 1 : 0, '/') + std::string(250, 'p');
  dir.entry.kind = wire::Kind::Dir;
  dir.entry.mode = 07755;
  IndexRecord erase;
  erase.op = IndexRecord::Op::EraseTree;
  erase.path = "gone";
  IndexRecord stamp;
  stamp.op = IndexRecord::Op::Stamp;
  stamp.stamp_ns = -7;
  return {put, dir, erase, stamp};
}

TEST(IndexRecord, RoundTrips) {
  std::vector<uint8_t> b;
  for (auto& r : samples()) encode_index_record(b, r);
  size_t pos = 0;
  for (auto& want : samples()) {
    IndexRecord got;
    size_t used = 0;
    ASSERT_EQ(decode_index_record(std::span(b).subspan(pos), got, used), IndexDecode::Ok);
    EXPECT_EQ(got, want);
    pos += used;
  }
  EXPECT_EQ(pos, b.size());
}

TEST(IndexRecord, EveryTruncationIsTruncated) {
  for (auto& r : samples()) {
    std::vector<uint8_t> b;
    encode_index_record(b, r);
    for (size_t n = 0; n < b.size(); ++n) {
      IndexRecord got;
      size_t used = 0;
      EXPECT_EQ(decode_index_record(std::span(b).first(n), got, used), IndexDecode::Truncated) << n;
    }
  }
}

TEST(IndexRecord, EveryFlippedBitIsCaught) {
  std::vector<uint8_t> b;
  encode_index_record(b, samples()[0]);
  for (size_t i = 0; i < b.size() * 8; ++i) {
    auto c = b;
    c[i / 8] ^= uint8_t(1 << (i % 8));
    IndexRecord got;
    size_t used = 0;
    IndexDecode d = decode_index_record(c, got, used);
    EXPECT_NE(d, IndexDecode::Ok) << "bit " << i;
  }
}

TEST(IndexRecord, HostilePathsAreRefused) {
  for (std::string p :
       std::vector<std::string>{"../x", "/abs", "a//b", "a/./b", std::string("a\0b", 3), ""}) {
    IndexRecord r;
    r.op = IndexRecord::Op::EraseTree;
    r.path = p;
    std::vector<uint8_t> b;
    encode_index_record(b, r);
    IndexRecord got;
    size_t used = 0;
    EXPECT_EQ(decode_index_record(b, got, used), IndexDecode::Corrupt) << p;
  }
}

struct Dirs : ::testing::Test {
  fs::path root, base, state;
  int basefd = -1, statefd = -1;
  void SetUp() override {
    root = fs::temp_directory_path() /
           ("makuo-index-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    base = root / "base";
    state = root / "state";
    fs::create_directories(base);
    fs::create_directories(state);
    basefd = open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    statefd = open(state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  void TearDown() override {
    close(basefd);
    close(statefd);
    fs::remove_all(root);
  }
  void write(const std::string& rel, const std::string& data, time_t mtime = 0) {
    fs::create_directories((base / rel).parent_path());
    std::ofstream(base / rel) << data;
    if (mtime) set_mtime(rel, mtime);
  }
  void set_mtime(const std::string& rel, time_t sec) {
    struct timespec t[2] = {{0, UTIME_OMIT}, {sec, 0}};
    utimensat(AT_FDCWD, (base / rel).c_str(), t, AT_SYMLINK_NOFOLLOW);
  }
  struct stat stat_of(const std::string& rel) {
    struct stat st;
    lstat((base / rel).c_str(), &st);
    return st;
  }
};

IndexEntry file_entry(uint64_t size, int64_t mtime, std::string origin = "") {
  IndexEntry e;
  e.kind = wire::Kind::File;
  e.mode = 0644;
  e.size = size;
  e.mtime_ns = mtime;
  e.origin = std::move(origin);
  return e;
}

using TreeIndexTest = Dirs;

TEST_F(TreeIndexTest, SurvivesARestartAndFoldsItsLogIntoASnapshot) {
  std::vector<std::string> w;
  {
    TreeIndex idx(statefd);
    ASSERT_EQ(idx.load(w), 0);
    EXPECT_TRUE(idx.fresh());
    idx.put("a", file_entry(1, 10, "n1"));
    idx.put("d/x", file_entry(2, 20));
    idx.put("d/y", file_entry(3, 30));
    idx.put("d x", file_entry(4, 40));  // sorts between "d" and "d/"
    IndexEntry d;
    d.kind = wire::Kind::Dir;
    idx.put("d", d);
    ASSERT_EQ(idx.flush(1000), 0);
    idx.erase_tree("d");
    idx.rename_tree("a", "b");
    ASSERT_EQ(idx.flush(2000, true), 0);
  }
  TreeIndex again(statefd);
  ASSERT_EQ(again.load(w), 0);
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(again.fresh());
  EXPECT_EQ(again.stamp_ns(), 2000);
  ASSERT_EQ(again.size(), 2u);
  ASSERT_NE(again.find("b"), nullptr);
  EXPECT_EQ(again.find("b")->origin, "n1");
  EXPECT_NE(again.find("d x"), nullptr);
  // Enough records to pass the fold threshold: a snapshot is written and the log emptied.
  for (int i = 0; i < 80000; ++i) again.put("many/file-" + std::to_string(i), file_entry(i, i));
  ASSERT_EQ(again.flush(3000), 0);
  EXPECT_GT(fs::file_size(state / "index"), 1u << 20);
  EXPECT_LT(fs::file_size(state / "index.log"), 100u);
  TreeIndex third(statefd);
  ASSERT_EQ(third.load(w), 0);
  EXPECT_EQ(third.size(), 80002u);
  EXPECT_EQ(third.stamp_ns(), 3000);
}

TEST_F(TreeIndexTest, ATornTailIsSkippedWithAWarning) {
  std::vector<std::string> w;
  {
    TreeIndex idx(statefd);
    ASSERT_EQ(idx.load(w), 0);
    idx.put("kept", file_entry(1, 1));
    ASSERT_EQ(idx.flush(1), 0);
    idx.put("torn", file_entry(2, 2));
    ASSERT_EQ(idx.flush(2), 0);
  }
  fs::resize_file(state / "index.log", fs::file_size(state / "index.log") - 5);
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("damaged bytes at the end skipped"), std::string::npos);
  EXPECT_NE(idx.find("kept"), nullptr);
  EXPECT_EQ(idx.stamp_ns(), 1);
}

TEST_F(TreeIndexTest, LocalVersionsCarryTheirHistory) {
  std::vector<std::string> w;
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  write("f", "one", 1000);
  wire::Entry e = entry_from_stat(stat_of("f"), "f");
  idx.note_local(e, "me");
  EXPECT_EQ(e.origin, "me");
  EXPECT_TRUE(e.ancestors.empty());
  wire::Version v1{e.mtime_ns, e.size};
  // Pushed again unchanged (a chmod): the same version, the same history.
  wire::Entry again = e;
  again.mode = 0600;
  again.origin.clear();
  idx.note_local(again, "me");
  EXPECT_EQ(again.origin, "me");
  // A second write on top of the first: the first is its ancestor.
  write("f", "two!", 2000);
  wire::Entry e2 = entry_from_stat(stat_of("f"), "f");
  idx.note_local(e2, "me");
  EXPECT_EQ(e2.ancestors, std::vector<wire::Version>{v1});
  // A version the index has not seen is ours, on top of what it has.
  write("f", "three", 3000);
  LocalVersion lv = idx.local_version("f", stat_of("f"), "me");
  EXPECT_EQ(lv.origin, "me");
  ASSERT_EQ(lv.ancestors.size(), 2u);
  EXPECT_EQ(lv.ancestors[1], v1);
  // Received from elsewhere: origin and ancestors come with it.
  wire::Entry in = entry_from_stat(stat_of("f"), "f");
  in.origin = "other";
  in.ancestors = {{7, 7}};
  struct stat st = stat_of("f");
  idx.note_applied("f", &st, &in, "sender");
  lv = idx.local_version("f", st, "me");
  EXPECT_EQ(lv.origin, "other");
  EXPECT_EQ(lv.ancestors, (std::vector<wire::Version>{{7, 7}}));
  wire::Entry relay = entry_from_stat(st, "f");
  idx.annotate(relay, "me");
  EXPECT_EQ(relay.origin, "other");
  // A deletion: the deleted version heads the ancestors; the index forgets the path.
  wire::Entry gone;
  gone.kind = wire::Kind::Absent;
  gone.path = "f";
  idx.note_local(gone, "me");
  ASSERT_FALSE(gone.ancestors.empty());
  EXPECT_EQ(gone.ancestors[0], (wire::Version{mtime_ns(st), uint64_t(st.st_size)}));
  EXPECT_EQ(idx.find("f"), nullptr);
}

TEST_F(TreeIndexTest, AWriteWithinTheTickOfTheVersionItReplacesIsOurs) {
  std::vector<std::string> w;
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  write("f", "theirs", 1000);
  IndexEntry received = index_entry_of(stat_of("f"));
  received.origin = "other";
  received.hash = wire::Hash128{1};
  idx.put("f", received);
  write("f", "mine!!", 1000);  // the same size and mtime, other content
  wire::Entry e = entry_from_stat(stat_of("f"), "f");
  e.hash = wire::Hash128{2};
  idx.note_local(e, "me");
  EXPECT_EQ(e.origin, "me");
  EXPECT_EQ(e.hash, (wire::Hash128{2}));
  EXPECT_EQ(e.ancestors, std::vector<wire::Version>{received.version()});
  // Pushed once more with the same content: still the same version.
  wire::Entry again = entry_from_stat(stat_of("f"), "f");
  again.hash = wire::Hash128{2};
  idx.note_local(again, "me");
  EXPECT_EQ(again.ancestors, e.ancestors);
}

TEST_F(TreeIndexTest, AncestorsAreBounded) {
  std::vector<std::string> w;
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  wire::Entry e;
  for (int i = 1; i <= 10; ++i) {
    write("f", std::string(size_t(i), 'x'), 1000 + i);
    e = entry_from_stat(stat_of("f"), "f");
    idx.note_local(e, "me");
  }
  EXPECT_EQ(e.ancestors.size(), wire::kMaxAncestors);
  EXPECT_EQ(e.ancestors[0].size, 9u);
}

using RescanTest = Dirs;

TEST_F(RescanTest, FindsWhatChangedWhileWeWereNotRunning) {
  Tombstones tombs(statefd, "tombstones", int64_t(7) * 86400 * 1'000'000'000LL);
  write("same", "s", 1000);
  write("changed", "c", 1000);
  write("deleted/f", "d", 1000);
  write("vanished", "v", 1000);
  write("dir/inner", "i", 1000);
  set_mtime("deleted", 1000);
  set_mtime("dir", 1000);
  std::vector<std::string> w;
  {
    TreeIndex idx(statefd);
    ASSERT_EQ(idx.load(w), 0);
    RescanStats first = rescan(basefd, base.string(), nullptr, idx, tombs, "me", idx.stamp_ns());
    EXPECT_EQ(first.entries, 7u);
    EXPECT_EQ(first.added, 0u);  // a fresh index: what is there was there before us
    EXPECT_EQ(idx.find("same")->origin, "");
    ASSERT_EQ(idx.flush(5000'000'000'000LL, true), 0);
  }
  // While "stopped" (at 5000 s): one file changed, one deleted (its directory's mtime moves
  // past our stop), one gone while its directory's mtime stayed (as after a power loss),
  // and one added.
  write("changed", "cc", 6000);
  fs::remove(base / "deleted/f");
  set_mtime("deleted", 6000);
  fs::remove(base / "vanished");
  set_mtime("", 1000);
  write("dir/new", "n", 6000);
  set_mtime("dir", 6000);
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  ASSERT_FALSE(idx.fresh());
  int64_t stopped = idx.stamp_ns();
  EXPECT_EQ(stopped, 5000'000'000'000LL);
  RescanStats s = rescan(basefd, base.string(), nullptr, idx, tombs, "me", stopped);
  EXPECT_EQ(s.added, 1u);
  EXPECT_EQ(s.changed, 1u);
  EXPECT_EQ(s.deleted, 1u);
  EXPECT_EQ(s.forgotten, 1u);
  EXPECT_EQ(idx.find("changed")->origin, "me");
  EXPECT_EQ(idx.find("changed")->ancestors.size(), 1u);
  EXPECT_EQ(idx.find("dir/new")->origin, "me");
  EXPECT_EQ(tombs.when("deleted/f"), stopped);
  EXPECT_EQ(tombs.when("vanished"), 0);
  EXPECT_EQ(idx.find("deleted/f"), nullptr);
  EXPECT_EQ(idx.find("vanished"), nullptr);
  auto list = tombs.list(stopped);
  ASSERT_EQ(list.size(), 1u);
  ASSERT_TRUE(list[0].base);
  EXPECT_EQ(list[0].base->size, 1u);
}

TEST_F(RescanTest, TombstonesKeepTheDeletedVersionAcrossARestart) {
  Tombstones tombs(statefd, "tombstones", int64_t(7) * 86400 * 1'000'000'000LL);
  tombs.add("with base", 100, wire::Version{50, 5});
  tombs.add("without", 200);
  ASSERT_EQ(tombs.save(300), 0);
  Tombstones again(statefd, "tombstones", int64_t(7) * 86400 * 1'000'000'000LL);
  ASSERT_EQ(again.load(), 0);
  auto list = again.list(300);
  ASSERT_EQ(list.size(), 2u);
  for (auto& t : list) {
    if (t.path == "with base") {
      ASSERT_TRUE(t.base);
      EXPECT_EQ(*t.base, (wire::Version{50, 5}));
      EXPECT_EQ(t.when_ns, 100);
    } else {
      EXPECT_EQ(t.path, "without");
      EXPECT_FALSE(t.base);
    }
  }
}

}  // namespace
}  // namespace makuo
