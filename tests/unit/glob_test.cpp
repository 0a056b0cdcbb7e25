#include "sync/glob.hpp"

#include <fnmatch.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

namespace makuo {
namespace {

bool libc(const std::string& p, const std::string& s) {
  return fnmatch(p.c_str(), s.c_str(), FNM_PATHNAME) == 0;
}

TEST(Glob, MatchesAsFnmatchWithPathname) {
  struct Case {
    const char *p, *s;
  };
  const Case cases[] = {{"*.log", "a.log"},
                        {"*.log", "d/a.log"},
                        {"cache/", "cache/"},
                        {"/abs/*", "/abs/x"},
                        {"/abs/*", "/abs/x/y"},
                        {"a?c", "abc"},
                        {"a?c", "a/c"},
                        {"[a-c]x", "bx"},
                        {"[!a-c]x", "bx"},
                        {"[]a]", "]"},
                        {"[!]a]", "b"},
                        {"[a-]", "-"},
                        {"[", "["},
                        {"a[", "a["},
                        {"\\*", "*"},
                        {"\\*", "x"},
                        {"a\\/b", "a/b"},
                        {"[[:digit:]]x", "7x"},
                        {"[[:alpha:]]", "7"},
                        {"*", ""},
                        {"", ""},
                        {"**", "ab"},
                        {"a*b*c", "aXbYc"},
                        {"a*b*c", "aXbY"},
                        {"*/*", "a/b"},
                        {"*/*", "a/b/c"},
                        {"[/]", "/"},
                        {"\\", "\\"},
                        {"a\\", "a\\"}};
  for (auto& c : cases) EXPECT_EQ(glob_match(c.p, c.s), libc(c.p, c.s)) << c.p << " ~ " << c.s;
}

// Well-formed patterns of every element (malformed brackets are where glibc and POSIX part).
TEST(Glob, AgreesWithFnmatchOnRandomPatterns) {
  std::mt19937 rng(7);
  auto any = [&](const std::string& from) { return from[rng() % from.size()]; };
  auto element = [&]() -> std::string {
    switch (rng() % 8) {
      case 0:
        return "*";
      case 1:
        return "?";
      case 2:
        return "/";
      case 3:
        return std::string("\\") + any("ab*?[.");
      case 4: {
        std::string b = "[";
        if (rng() % 3 == 0) b += any("!^");
        for (size_t k = 0, n = 1 + rng() % 3; k < n; ++k) {
          char lo = any("ab.-!]"), hi = any("abc.-");
          if (rng() % 3 == 0 && lo <= hi && lo != ']' && lo != '-' && hi != '-') {
            b += std::string{lo, '-', hi};
          } else if (rng() % 5 == 0) {
            b += "[:alpha:]";
          } else if (lo != ']' || k == 0) {
            b += lo;
          }
        }
        return b + "]";
      }
      default:
        return std::string(1, any("ab.-!"));
    }
  };
  int disagree = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string p, s;
    for (size_t k = 0, n = rng() % 6; k < n; ++k) p += element();
    for (size_t k = 0, n = rng() % 7; k < n; ++k) s += any("ab/.-!*?[]");
    if (glob_match(p, s) != libc(p, s) && ++disagree <= 5) ADD_FAILURE() << p << " ~ " << s;
  }
  EXPECT_EQ(disagree, 0);
}

// fnmatch backtracks through every way of splitting the string among the stars here (it
// would not return within the test's lifetime); the greedy matcher answers at once.
TEST(Glob, AnswersWhereFnmatchWouldBacktrackForever) {
  std::string p, s(4000, 'a');
  for (int i = 0; i < 30; ++i) p += "*a";
  EXPECT_FALSE(glob_match(p + "*b", s));
  EXPECT_TRUE(glob_match(p + "*", s));
}

}  // namespace
}  // namespace makuo
