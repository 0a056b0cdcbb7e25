#include "sync/paths.hpp"

#include <gtest/gtest.h>

namespace makuo {
namespace {

TEST(Paths, RefusesEverythingThatLeavesTheBase) {
  const std::string hostile[] = {"",
                                 "/etc/passwd",
                                 "../x",
                                 "a/../../x",
                                 "a/./b",
                                 "a//b",
                                 ".",
                                 "..",
                                 "a/..",
                                 "./a",
                                 "a/",
                                 "/",
                                 "a/.",
                                 "../../../etc/shadow",
                                 std::string("a\0b", 3),
                                 std::string(5000, 'x'),
                                 std::string(256, 'n'),
                                 "x/" + std::string(300, 'y')};
  for (auto& p : hostile) EXPECT_FALSE(valid_relpath(p)) << p;
  EXPECT_TRUE(valid_relpath("a"));
  EXPECT_TRUE(valid_relpath("a b/..c/d..e/.hidden"));
  EXPECT_TRUE(valid_relpath(std::string(255, 'n')));
}

TEST(Paths, NormalizesConsolePaths) {
  std::string out, why;
  EXPECT_TRUE(normalize_console_path("dir/", out, why));
  EXPECT_EQ(out, "dir");
  EXPECT_TRUE(normalize_console_path("./a/b", out, why));
  EXPECT_EQ(out, "a/b");
  EXPECT_TRUE(normalize_console_path(".", out, why));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(normalize_console_path("/etc", out, why));
  EXPECT_FALSE(normalize_console_path("../x", out, why));
  EXPECT_FALSE(normalize_console_path("a/../../x", out, why));
}

TEST(Paths, ShowsPathsThatWouldBreakALineQuoted) {
  EXPECT_EQ(shown("a b/c.txt"), "a b/c.txt");
  EXPECT_EQ(shown("a\nb"), "$'a\\nb'");
  EXPECT_EQ(shown("x\x1b[2J"), "$'x\\x1b[2J'");  // a terminal escape stays text
  EXPECT_EQ(shown("end\\"), "$'end\\\\'");
  EXPECT_EQ(shown("$'a'"), "$'$\\'a\\''");
  EXPECT_EQ(shown("日本語.txt"), "日本語.txt");
  EXPECT_EQ(shown("\xff\xfe"), "$'\\xff\\xfe'");        // not UTF-8
  EXPECT_EQ(shown("csi\xc2\x9b"), "$'csi\\xc2\\x9b'");  // U+009B, a C1 control
}

TEST(Paths, ExcludesMatchLikeMakuosan) {
  Excludes x;
  EXPECT_TRUE(x.add("*.log"));
  EXPECT_FALSE(x.add("*.log"));
  EXPECT_TRUE(x.add("cache/"));
  EXPECT_TRUE(x.add("a/b/*"));
  EXPECT_TRUE(x.match("/srv", "deep/dir/x.log", false));
  EXPECT_FALSE(x.match("/srv", "x.log.gz", false));
  EXPECT_TRUE(x.match("/srv", "site/cache", true));
  EXPECT_FALSE(x.match("/srv", "site/cache", false));
  EXPECT_TRUE(x.match("/srv", "z/a/b/c", false));
  Excludes abs;
  abs.add("/srv/only/*");
  EXPECT_TRUE(abs.match("/srv", "only/f", false));
  EXPECT_FALSE(abs.match("/srv", "x/only/f", false));
  EXPECT_TRUE(x.del("cache/"));
  EXPECT_FALSE(x.del("cache/"));
}

}  // namespace
}  // namespace makuo
