#include "sync/glob.hpp"

#include <cctype>
#include <cstring>

namespace makuo {
namespace {

bool in_class(std::string_view name, unsigned char c) {
  if (name == "alnum") return std::isalnum(c);
  if (name == "alpha") return std::isalpha(c);
  if (name == "blank") return c == ' ' || c == '\t';
  if (name == "cntrl") return std::iscntrl(c);
  if (name == "digit") return std::isdigit(c);
  if (name == "graph") return std::isgraph(c);
  if (name == "lower") return std::islower(c);
  if (name == "print") return std::isprint(c);
  if (name == "punct") return std::ispunct(c);
  if (name == "space") return std::isspace(c);
  if (name == "upper") return std::isupper(c);
  if (name == "xdigit") return std::isxdigit(c);
  return false;
}

constexpr size_t kInvalid = std::string_view::npos - 1;

// The bracket expression at p[i] ('['): calls range(lo, hi) for its ranges and cls(name) for
// its [:class:]es; returns the index past its ']', npos when it is not one (no closing ']':
// the '[' is then an ordinary character), or kInvalid when it can match nothing.
template <class Range, class Class>
size_t bracket(std::string_view p, size_t i, Range range, Class cls) {
  size_t j = i + 1;
  if (j < p.size() && (p[j] == '!' || p[j] == '^')) ++j;
  bool first = true;
  while (j < p.size() && (first || p[j] != ']')) {
    first = false;
    if (p[j] == '[' && j + 1 < p.size() && p[j + 1] == ':') {
      size_t end = p.find(":]", j + 2);
      if (end != std::string_view::npos) {
        cls(p.substr(j + 2, end - j - 2));
        j = end + 2;
        continue;
      }
    }
    if (p[j] == '[' && j + 1 < p.size() && (p[j + 1] == '.' || p[j + 1] == '=')) {
      // A collating symbol or an equivalence class: in the C locale, one character stands
      // for itself; more than one matches nothing, as does a symbol left open (an open
      // class is taken as its characters, as glibc does).
      char close[] = {p[j + 1], ']', '\0'};
      size_t end = p.find(close, j + 2);
      if (end == j + 3) {
        range(static_cast<unsigned char>(p[j + 2]), static_cast<unsigned char>(p[j + 2]));
        j = end + 2;
        continue;
      }
      if (end != std::string_view::npos || p[j + 1] == '.') return kInvalid;
    }
    if (p[j] == '\\' && j + 1 < p.size()) ++j;
    unsigned char lo = static_cast<unsigned char>(p[j++]), hi = lo;
    if (j + 1 < p.size() && p[j] == '-' && p[j + 1] != ']') {
      if (p[j + 1] == '\\' && j + 2 < p.size()) ++j;
      hi = static_cast<unsigned char>(p[j + 1]);
      j += 2;
    }
    range(lo, hi);
  }
  return j < p.size() ? j + 1 : std::string_view::npos;
}

size_t bracket_end(std::string_view p, size_t i) {
  return bracket(
      p, i, [](unsigned char, unsigned char) {}, [](std::string_view) {});
}

// Whether the single-character element at p[i] matches c; i moves past it. A '\\' that
// ends the pattern quotes nothing: fnmatch takes the pattern for malformed and matches nothing.
bool one(std::string_view p, size_t& i, unsigned char c) {
  char e = p[i];
  if (e == '?') {
    ++i;
    return true;
  }
  if (e == '[') {
    bool any = false;
    size_t end = bracket(
        p, i, [&](unsigned char lo, unsigned char hi) { any = any || (lo <= c && c <= hi); },
        [&](std::string_view name) { any = any || in_class(name, c); });
    if (end == kInvalid) {
      ++i;
      return false;
    }
    if (end != std::string_view::npos) {
      bool negate = p[i + 1] == '!' || p[i + 1] == '^';
      i = end;
      return any != negate;
    }
  }
  if (e == '\\' && ++i >= p.size()) return false;
  return static_cast<unsigned char>(p[i++]) == c;
}

}  // namespace

std::vector<std::string_view> split_slashes(std::string_view s) {
  std::vector<std::string_view> v;
  size_t start = 0;
  for (;;) {
    size_t k = s.find('/', start);
    if (k == std::string_view::npos) {
      v.push_back(s.substr(start));
      return v;
    }
    v.push_back(s.substr(start, k - start));
    start = k + 1;
  }
}

bool glob_part_match(std::string_view p, std::string_view s) {
  // Greedy, with a return point at the last '*' only: a later '*' can absorb whatever an
  // earlier one would, so nothing before it needs another try.
  size_t pi = 0, si = 0, star = std::string_view::npos, star_si = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = ++pi;
      star_si = si;
      continue;
    }
    size_t next = pi;
    if (pi < p.size() && one(p, next, static_cast<unsigned char>(s[si]))) {
      pi = next;
      ++si;
      continue;
    }
    if (star == std::string_view::npos) return false;
    pi = star;
    si = ++star_si;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::vector<std::string_view> split_pattern(std::string_view p) {
  std::vector<std::string_view> v;
  size_t start = 0, i = 0;
  while (i < p.size()) {
    size_t end = p[i] == '[' ? bracket_end(p, i) : std::string_view::npos;
    if (end < kInvalid) {
      i = end;  // a bracket expression is one element, even with a '/' in it
    } else if (p[i] == '\\' && i + 1 < p.size() && p[i + 1] != '/') {
      i += 2;  // a quoted character, whatever it is
    } else if (p[i] == '/' || p[i] == '\\') {
      size_t sep = p[i] == '/' ? i : i + 1;  // "\/" separates as '/' does
      if (sep >= p.size()) break;            // a lone '\' at the end
      v.push_back(p.substr(start, i - start));
      start = i = sep + 1;
    } else {
      ++i;
    }
  }
  v.push_back(p.substr(start));
  return v;
}

bool glob_match(std::string_view p, std::string_view s) {
  auto ps = split_pattern(p), ss = split_slashes(s);
  if (ps.size() != ss.size()) return false;
  for (size_t i = 0; i < ps.size(); ++i)
    if (!glob_part_match(ps[i], ss[i])) return false;
  return true;
}

}  // namespace makuo
