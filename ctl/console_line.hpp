// The console's line grammar, as makuosan parses it (reference §2.3), as pure functions.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace makuo::ctl {

// Splits a console line: text after a CR is ignored, tokens are separated by runs of spaces,
// and a token ending in '\' is joined to the next with one space ("a\ b" -> "a b"). Our
// extension: a token in bash's $'...' quoting ($'a\nb', \n \r \t \\ \' \xHH) is one token,
// spaces and all, whatever bytes it stands for (a file name may hold a newline).
std::vector<std::string> tokenize(std::string_view line);

// Inverse of tokenize for one path: spaces become "\ ".
std::string escape_spaces(std::string_view s);

// One token as msync puts it on a command line, to come back from tokenize byte for byte:
// escape_spaces, or $'...' quoting (sync/paths shown()) when it holds a byte the line cannot
// carry as it is.
std::string quote_token(std::string_view s);

// A path argument: quote_token, and never taken for an option (a leading '-' gets "./").
std::string quote_arg(std::string_view path);

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
