// Shell patterns as fnmatch(3) with FNM_PATHNAME reads them ('*' and '?' never match '/', nor
// does a bracket expression; a backslash quotes the next character), matched without
// backtracking over the whole string: exclude patterns come from the wire and from consoles,
// and glibc's fnmatch takes exponential time on patterns like "*a*a*a*a*b". Malformed bracket
// expressions (left open, reversed ranges) are read as POSIX says, which is not always as
// glibc does.
#pragma once
#include <string_view>
#include <vector>

namespace makuo {

// The '/'-separated parts of a path.
std::vector<std::string_view> split_slashes(std::string_view s);
// The parts of a pattern: separated by '/' or by "\/".
std::vector<std::string_view> split_pattern(std::string_view p);

// Whether the part of a path s matches the part of a pattern p (neither holds a '/'). Time
// O(|p| * |s|) at worst, O(|p| + |s|) for patterns with at most one '*'.
bool glob_part_match(std::string_view p, std::string_view s);

// fnmatch(p, s, FNM_PATHNAME) == 0.
bool glob_match(std::string_view p, std::string_view s);

}  // namespace makuo
