// The state directory: its default path, its layout, the move of release 0.1's files, and that
// root's work in it never follows what the daemon's user put there.
#include "state/state_dir.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace makuo::state {
namespace {

namespace fs = std::filesystem;

TEST(StateDir, DefaultPathEscapesLikeSystemd) {
  EXPECT_EQ(default_path("/srv/www-base"), "/var/lib/makuo/srv-www\\x2dbase");
  EXPECT_EQ(default_path("/var/www"), "/var/lib/makuo/var-www");
  EXPECT_EQ(default_path("/"), "/var/lib/makuo/-");
  EXPECT_EQ(default_path("/a b/.c"), "/var/lib/makuo/a\\x20b-.c");
}

class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/makuo-state-test.XXXXXX";
    root_ = mkdtemp(t);
    chmod(root_.c_str(), 0755);
  }
  void TearDown() override { fs::remove_all(root_); }
  struct stat st(const fs::path& p) {
    struct stat s {};
    lstat(p.c_str(), &s);
    return s;
  }
  fs::path root_;
};

constexpr uid_t kUser = 65534;  // nobody
constexpr gid_t kGroup = 65534;

TEST_F(StateDirTest, MakesItsLayoutAndRefusesASymlinkOnTheWay) {
  std::string what;
  StateDir s;
  ASSERT_EQ(s.open((root_ / "a/b/state").string(), uid_t(-1), gid_t(-1), what), 0) << what;
  for (const char* d : {kJournal, kDaemon, kNotify}) {
    EXPECT_TRUE(fs::is_directory(root_ / "a/b/state" / d)) << d;
    EXPECT_EQ(st(root_ / "a/b/state" / d).st_mode & 07777, 0700u) << d;
  }
  fs::create_directory_symlink(root_ / "a", root_ / "link");
  StateDir t;
  EXPECT_EQ(t.open((root_ / "link/b/state").string(), uid_t(-1), gid_t(-1), what), ELOOP);
  EXPECT_EQ(what, (root_ / "link").string());
}

TEST_F(StateDirTest, AsRootTheDirectoryIsRootsAndWhatTheUserWritesIsBelow) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  fs::path p = root_ / "state";
  fs::create_directories(p);
  chown(p.c_str(), kUser, kGroup);  // a release 0.1 state directory: the user's
  std::ofstream(p / "index") << "MKIDX01\n";
  std::ofstream(p / "last-contact") << "1\n";
  std::string what;
  StateDir s;
  ASSERT_EQ(s.open(p.string(), kUser, kGroup, what), 0) << what;
  EXPECT_EQ(st(p).st_uid, 0u);
  EXPECT_EQ(st(p).st_mode & 07777, 0755u);
  for (const char* d : {kJournal, kDaemon, kNotify}) EXPECT_EQ(st(p / d).st_uid, kUser) << d;
  EXPECT_FALSE(fs::exists(p / "index"));
  ASSERT_TRUE(fs::exists(p / kDaemon / "index"));
  EXPECT_EQ(st(p / kDaemon / "index").st_uid, kUser);
  EXPECT_EQ(st(p / kDaemon / "last-contact").st_uid, kUser);
}

// What the daemon's user could plant for root: a symlink for every name root touches, and a
// hard link to a file of root's. Nothing outside is opened, created or chowned.
TEST_F(StateDirTest, NothingTheUserPlantsLeadsRootOutside) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  fs::path p = root_ / "state", victim = root_ / "victim", vdir = root_ / "victim-dir";
  fs::create_directories(p);
  fs::create_directories(vdir);
  std::ofstream(victim) << "root's\n";
  chmod(victim.c_str(), 0600);
  chown(p.c_str(), kUser, kGroup);
  for (const char* n : {"index", "index.log", "last-contact", "tombstones", ".index.tmp"})
    fs::create_symlink(victim, p / n);
  fs::create_directory_symlink(vdir, p / kJournal);
  fs::create_directory_symlink(vdir, p / kNotify);
  fs::create_directories(p / kDaemon);
  fs::create_symlink(victim, p / kDaemon / "index");
  fs::create_hard_link(victim, p / kDaemon / "hard");
  std::string what;
  StateDir s;
  ASSERT_EQ(s.open(p.string(), kUser, kGroup, what), 0) << what;
  EXPECT_EQ(st(victim).st_uid, 0u);
  EXPECT_EQ(st(victim).st_mode & 07777, 0600u);
  EXPECT_EQ(st(vdir).st_uid, 0u);
  EXPECT_TRUE(fs::is_empty(vdir));
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(p / kJournal)));  // a directory of its own now
  EXPECT_TRUE(fs::is_symlink(p / kDaemon / "index"));               // left alone, never followed
  std::ifstream in(victim);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "root's");
}

}  // namespace
}  // namespace makuo::state
