// The tree index: its record codec, persistence across restarts and crashes, the versions it
// gives local changes and keeps for received ones, tombstones, the upgrade from release 0.1's
// files, and the start-up rescan.
#include "sync/tree_index.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

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
  put.entry.version.origin = "web1";
  put.entry.version.vv = VersionVector({{node_key("web1"), 1'600'000'000'000'000'000ULL}, {7, 6}});
  IndexRecord tomb;
  tomb.op = IndexRecord::Op::Put;
  tomb.path = "deleted";
  tomb.entry.kind = wire::Kind::Absent;
  tomb.entry.mtime_ns = 1'700'000'000'000'000'000LL;
  tomb.entry.version = bump(put.entry.version, "web2", 1'700'000'000'000'000'001ULL);
  IndexRecord dir;
  dir.op = IndexRecord::Op::Put;
  for (int i = 0; i < 16; ++i) dir.path += std::string(i ? 1 : 0, '/') + std::string(250, 'p');
  dir.entry.kind = wire::Kind::Dir;
  dir.entry.mode = 07755;
  IndexRecord erase;
  erase.op = IndexRecord::Op::EraseTree;
  erase.path = "gone";
  IndexRecord one;
  one.op = IndexRecord::Op::Erase;
  one.path = "one";
  IndexRecord stamp;
  stamp.op = IndexRecord::Op::Stamp;
  stamp.stamp_ns = -7;
  return {put, tomb, dir, erase, one, stamp};
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
  if (!origin.empty()) e.version = bump({}, origin, 100);
  return e;
}

using TreeIndexTest = Dirs;

TEST_F(TreeIndexTest, SurvivesARestartAndFoldsItsLogIntoASnapshot) {
  std::vector<std::string> w;
  PathVersion moved;
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
    idx.rename_tree("a", "b", "me", 500, 2000);
    moved = idx.find("b")->version;
    ASSERT_EQ(idx.flush(2000, true), 0);
  }
  TreeIndex again(statefd);
  ASSERT_EQ(again.load(w), 0);
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(again.fresh());
  EXPECT_FALSE(again.upgraded());
  EXPECT_EQ(again.stamp_ns(), 2000);
  ASSERT_EQ(again.size(), 2u);
  ASSERT_NE(again.find("b"), nullptr);
  EXPECT_EQ(again.find("b")->version, moved);
  EXPECT_NE(again.find("d x"), nullptr);
  ASSERT_NE(again.tombstone("a"), nullptr);  // the rename's source
  EXPECT_EQ(again.tombstones_size(), 1u);
  EXPECT_EQ(again.max_clock(), 500u);
  // Enough records to pass the fold threshold: a snapshot is written and the log emptied.
  for (int i = 0; i < 80000; ++i) again.put("many/file-" + std::to_string(i), file_entry(i, i));
  ASSERT_EQ(again.flush(3000), 0);
  EXPECT_GT(fs::file_size(state / "index"), 1u << 20);
  EXPECT_LT(fs::file_size(state / "index.log"), 100u);
  TreeIndex third(statefd);
  ASSERT_EQ(third.load(w), 0);
  EXPECT_EQ(third.size(), 80002u);
  EXPECT_EQ(third.tombstones_size(), 1u);
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

TEST_F(TreeIndexTest, EveryLocalChangeIsANewVersionThatDescendsFromTheLast) {
  std::vector<std::string> w;
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  write("f", "one", 1000);
  wire::Entry e = entry_from_stat(stat_of("f"), "f");
  ASSERT_TRUE(idx.note_local(e, "me", 10, 1));
  EXPECT_EQ(e.version.origin, "me");
  EXPECT_EQ(e.version.clock(), 10u);
  // Pushed again unchanged: the same version.
  wire::Entry again = entry_from_stat(stat_of("f"), "f");
  idx.note_local(again, "me", 20, 2);
  EXPECT_EQ(again.version, e.version);
  // A chmod is a change; so is a write, however old the mtime it leaves (rsync -a, cp -p).
  chmod((base / "f").c_str(), 0600);
  wire::Entry chmodded = entry_from_stat(stat_of("f"), "f");
  idx.note_local(chmodded, "me", 30, 3);
  EXPECT_EQ(compare(chmodded.version.vv, e.version.vv), Order::After);
  write("f", "two!", 500);
  wire::Entry older = entry_from_stat(stat_of("f"), "f");
  idx.note_local(older, "me", 5, 4);  // even a clock that went back
  EXPECT_EQ(compare(older.version.vv, chmodded.version.vv), Order::After);
  EXPECT_EQ(older.version.clock(), 31u);
  // A change the index has not recorded yet is ours, on top of what it has (not stored).
  write("f", "three", 3000);
  struct stat st = stat_of("f");
  PathVersion lv = idx.local_version("f", &st, "me", 40);
  EXPECT_EQ(compare(lv.vv, older.version.vv), Order::After);
  EXPECT_EQ(idx.find("f")->version, older.version);
  // Received from elsewhere: the index holds the version judged.
  PathVersion theirs = bump(lv, "other", 50);
  idx.note_applied("f", &st, theirs, std::nullopt, 5);
  EXPECT_EQ(idx.local_version("f", &st, "me", 60), theirs);
  wire::Entry relay = entry_from_stat(st, "f");
  idx.annotate(relay, "me", 70);
  EXPECT_EQ(relay.version, theirs);
  // A deletion: a tombstone with a version on top of the deleted one; a re-creation descends
  // from the tombstone.
  fs::remove(base / "f");
  EXPECT_EQ(compare(idx.local_version("f", nullptr, "me", 80).vv, theirs.vv), Order::After);
  wire::Entry gone;
  gone.kind = wire::Kind::Absent;
  gone.path = "f";
  ASSERT_TRUE(idx.note_local(gone, "me", 90, 6));
  EXPECT_EQ(compare(gone.version.vv, theirs.vv), Order::After);
  EXPECT_EQ(idx.find("f"), nullptr);
  ASSERT_NE(idx.tombstone("f"), nullptr);
  EXPECT_EQ(idx.tombstone("f")->version, gone.version);
  EXPECT_EQ(idx.local_version("f", nullptr, "me", 95), gone.version);
  write("f", "back", 100);
  wire::Entry back = entry_from_stat(stat_of("f"), "f");
  idx.note_local(back, "me", 100, 7);
  EXPECT_EQ(compare(back.version.vv, gone.version.vv), Order::After);
  EXPECT_EQ(idx.tombstone("f"), nullptr);
  // An absent path the index never knew: nothing to tell.
  wire::Entry never;
  never.kind = wire::Kind::Absent;
  never.path = "never";
  EXPECT_FALSE(idx.note_local(never, "me", 110, 8));
}

TEST_F(TreeIndexTest, ARewriteWithinTheTickOfTheVersionItReplacesIsAChange) {
  std::vector<std::string> w;
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  write("f", "theirs", 1000);
  IndexEntry received = index_entry_of(stat_of("f"));
  received.version = bump({}, "other", 10);
  received.hash = wire::Hash128{1};
  idx.put("f", received);
  write("f", "mine!!", 1000);  // the same size and mtime, other content
  wire::Entry e = entry_from_stat(stat_of("f"), "f");
  e.hash = wire::Hash128{2};
  idx.note_local(e, "me", 20, 1);
  EXPECT_EQ(e.version.origin, "me");
  EXPECT_EQ(compare(e.version.vv, received.version.vv), Order::After);
  EXPECT_EQ(idx.find("f")->hash, (wire::Hash128{2}));
}

TEST_F(TreeIndexTest, ARenameGivesTheTargetsNewVersionsAndTheSourcesTombstones) {
  std::vector<std::string> w;
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  IndexEntry dir;
  dir.kind = wire::Kind::Dir;
  dir.version = bump({}, "a", 1);
  idx.put("src", dir);
  idx.put("src/f", file_entry(1, 1, "a"));
  idx.bury("dst/f", bump({}, "b", 2), 2);  // deleted there before
  idx.rename_tree("src", "dst", "me", 10, 3);
  ASSERT_NE(idx.find("dst/f"), nullptr);
  PathVersion v = idx.find("dst/f")->version;
  EXPECT_EQ(v.origin, "me");
  // Descends from what it carries and from what was at its new place.
  EXPECT_EQ(compare(v.vv, bump({}, "a", 100).vv), Order::After);
  EXPECT_EQ(compare(v.vv, bump({}, "b", 2).vv), Order::After);
  EXPECT_EQ(idx.find("src"), nullptr);
  ASSERT_NE(idx.tombstone("src/f"), nullptr);
  auto below = idx.tombstones_below("src");
  EXPECT_EQ(below.size(), 2u);
  EXPECT_EQ(idx.tombstones_in("").size(), 1u);
  EXPECT_EQ(idx.tombstones_in("src").size(), 1u);
  // Tombstones expire.
  idx.expire(3 + 10, 100);
  EXPECT_EQ(idx.tombstones_size(), 2u);
  idx.expire(3 + 200, 100);
  EXPECT_EQ(idx.tombstones_size(), 0u);
}

// Bytes of a record as release 0.1 wrote it (its origin and ancestors included).
std::vector<uint8_t> v1_record(const std::string& path, uint64_t size, int64_t mtime) {
  std::vector<uint8_t> b;
  auto put = [&](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
  };
  put(1, 1);
  put(path.size(), 2);
  b.insert(b.end(), path.begin(), path.end());
  put(uint8_t(wire::Kind::File), 1);
  put(2 | 4, 1);  // ancestors, origin
  put(0644, 4);
  put(0, 4);
  put(0, 4);
  put(size, 8);
  put(uint64_t(mtime), 8);
  put(1, 1);
  put(5, 8);
  put(6, 8);
  put(4, 1);
  b.insert(b.end(), {'w', 'e', 'b', '1'});
  std::vector<uint8_t> out;
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(b.size() >> (8 * i)));
  out.insert(out.end(), b.begin(), b.end());
  uint64_t h = XXH3_64bits(b.data(), b.size());
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(h >> (8 * i)));
  return out;
}

TEST_F(TreeIndexTest, AnIndexOfRelease01IsReadOnceWithoutVersions) {
  {
    std::ofstream f(state / "index", std::ios::binary);
    f << kIndexMagicV1;
    for (auto& r : {v1_record("a", 1, 10), v1_record("b", 2, 20)})
      f.write(reinterpret_cast<const char*>(r.data()), std::streamsize(r.size()));
  }
  std::ofstream(state / "tombstones") << "1700000000000000000/5/6\tgone\n1700000000000000001\ta\n";
  std::vector<std::string> w;
  TreeIndex idx(statefd);
  ASSERT_EQ(idx.load(w), 0);
  EXPECT_TRUE(w.empty());
  EXPECT_TRUE(idx.upgraded());
  ASSERT_EQ(idx.size(), 2u);
  EXPECT_TRUE(idx.find("a")->version.vv.empty());  // "no change seen yet", on every node alike
  EXPECT_EQ(idx.find("b")->size, 2u);
  // Rewritten in the current format.
  std::ifstream f(state / "index", std::ios::binary);
  std::string magic(kIndexMagic.size(), '\0');
  f.read(magic.data(), std::streamsize(magic.size()));
  EXPECT_EQ(magic, kIndexMagic);
  // Its tombstones are deletions made here at their times (not of a path that is there).
  ASSERT_EQ(import_legacy_tombstones(statefd, "tombstones", idx, "me"), 0);
  ASSERT_NE(idx.tombstone("gone"), nullptr);
  EXPECT_EQ(idx.tombstone("gone")->version.clock(), 1700000000000000000u);
  EXPECT_EQ(idx.tombstone("a"), nullptr);
  EXPECT_FALSE(fs::exists(state / "tombstones"));
}

using RescanTest = Dirs;

TEST_F(RescanTest, FindsWhatChangedWhileWeWereNotRunning) {
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
    RescanStats first = rescan(basefd, base.string(), nullptr, idx, "me", idx.stamp_ns());
    EXPECT_EQ(first.entries, 7u);
    EXPECT_EQ(first.added, 0u);  // a fresh index: what is there was there before us
    EXPECT_TRUE(idx.find("same")->version.vv.empty());
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
  RescanStats s = rescan(basefd, base.string(), nullptr, idx, "me", stopped);
  EXPECT_EQ(s.added, 1u);
  EXPECT_EQ(s.changed, 3u);  // and the two directories whose mtimes moved
  EXPECT_EQ(s.deleted, 1u);
  EXPECT_EQ(s.forgotten, 1u);
  // Changes dated when we stopped: a concurrent change made elsewhere since wins over them.
  EXPECT_EQ(idx.find("changed")->version.origin, "me");
  EXPECT_EQ(idx.find("changed")->version.clock(), uint64_t(stopped));
  EXPECT_EQ(idx.find("dir/new")->version.origin, "me");
  EXPECT_TRUE(idx.find("same")->version.vv.empty());
  ASSERT_NE(idx.tombstone("deleted/f"), nullptr);
  EXPECT_EQ(idx.tombstone("deleted/f")->version.clock(), uint64_t(stopped));
  EXPECT_EQ(idx.tombstone("deleted/f")->mtime_ns, stopped);
  EXPECT_EQ(idx.tombstone("vanished"), nullptr);
  EXPECT_EQ(idx.find("deleted/f"), nullptr);
  EXPECT_EQ(idx.find("vanished"), nullptr);
}

}  // namespace
}  // namespace makuo
