// The console's line grammar, as makuosan parses it (reference §2.3), as pure functions.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace makuo::ctl {

// Splits a console line: text after a CR is ignored, tokens are separated by runs of spaces,
// and a token ending in '\' is joined to the next with one space ("a\ b" -> "a b").
std::vector<std::string> tokenize(std::string_view line);

// Inverse of tokenize for one path: spaces become "\ ".
std::string escape_spaces(std::string_view s);

struct CommandArgs {
  std::map<char, std::string> opts;  // flag -> value ("" for flags without a value)
  std::vector<std::string> args;     // everything that is not an option
  std::string error;                 // non-empty: "invalid option -- x" and the like
  bool has(char c) const { return opts.count(c) > 0; }
};

// getopt-like over tokens[1..]: spec lists flag letters, a ':' after one takes a value.
// Unlike makuosan, options after the path are accepted too.
CommandArgs parse_args(const std::vector<std::string>& tokens, std::string_view spec);

}  // namespace makuo::ctl
