#include "ctl/console_line.hpp"

#include <gtest/gtest.h>

namespace makuo::ctl {
namespace {

TEST(ConsoleLine, TokenizesLikeMakuosan) {
  using V = std::vector<std::string>;
  EXPECT_EQ(tokenize("send -r  dir\r\n"), (V{"send", "-r", "dir"}));
  EXPECT_EQ(tokenize("send a\\ b\\ c"), (V{"send", "a b c"}));
  EXPECT_EQ(tokenize("echo x\rignored"), (V{"echo", "x"}));
  EXPECT_EQ(tokenize("   "), V{});
  EXPECT_EQ(escape_spaces("a b"), "a\\ b");
  EXPECT_EQ(tokenize("send " + escape_spaces("with space.txt")), (V{"send", "with space.txt"}));
}

TEST(ConsoleLine, ParsesOptionsBeforeAndAfterThePath) {
  auto a = parse_args({"send", "-n", "-t", "web2", "dir", "-r"}, "nrt:g:");
  EXPECT_TRUE(a.error.empty());
  EXPECT_TRUE(a.has('n'));
  EXPECT_TRUE(a.has('r'));
  EXPECT_EQ(a.opts['t'], "web2");
  EXPECT_EQ(a.args, std::vector<std::string>{"dir"});
  EXPECT_EQ(parse_args({"send", "-tweb3"}, "nrt:").opts['t'], "web3");
  EXPECT_EQ(parse_args({"send", "-x"}, "nrt:").error, "invalid option -- x");
  EXPECT_EQ(parse_args({"send", "-t"}, "nrt:").error, "option requires an argument -- t");
}

TEST(ConsoleLine, AnyFileNameComesBackByteForByte) {
  using V = std::vector<std::string>;
  const std::vector<std::string> names = {
      "plain.txt", "with space", "new\nline", "tab\there", "cr\rhere", "back\\slash",  "trailing\\",
      "$'dollar'", "quote'd",    "del\x7f",   "-leading",  "  two  ",  "bell\x01\\ x", "\xff\xfe"};
  for (auto& n : names) {
    EXPECT_EQ(tokenize("send " + quote_token(n) + " -r"), (V{"send", n, "-r"})) << quote_token(n);
    std::string q = quote_arg(n);
    EXPECT_EQ(q.find('\n'), std::string::npos) << q;  // one line whatever the name holds
    auto a = parse_args(tokenize("send " + q), "r");
    EXPECT_TRUE(a.error.empty()) << q;  // "-leading" is a path, not an option
  }
  EXPECT_EQ(quote_arg("-leading"), "./-leading");
  EXPECT_EQ(quote_token("new\nline"), "$'new\\nline'");
  // Not $'...' quoting: taken as it stands (original msync never writes it).
  EXPECT_EQ(tokenize("send $'open"), (V{"send", "$'open"}));
  EXPECT_EQ(tokenize("send $'a'b"), (V{"send", "$'a'b"}));
}

}  // namespace
}  // namespace makuo::ctl
