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

}  // namespace
}  // namespace makuo::ctl
