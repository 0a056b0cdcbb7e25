#include "sync/paths.hpp"

#include <algorithm>
#include <cstdio>

#include "sync/glob.hpp"
#include "sync/wire.hpp"

namespace makuo {

namespace {

// Length of the UTF-8 sequence at p[i] that a terminal shows as a character, 0 when the byte
// is not the start of one (a stray byte, an overlong or cut sequence, a C1 control U+0080-9F).
size_t printable_utf8(std::string_view p, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(p[k]); };
  unsigned char c = b(i);
  if (c >= 0x20 && c < 0x7f) return 1;
  size_t n = c >= 0xc2 && c <= 0xdf   ? 2
             : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4
                                      : 0;
  if (n == 0 || i + n > p.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  unsigned char d = b(i + 1);
  bool c1 = c == 0xc2 && d < 0xa0;
  bool overlong = (c == 0xe0 && d < 0xa0) || (c == 0xf0 && d < 0x90);
  bool not_a_char = (c == 0xed && d >= 0xa0) || (c == 0xf4 && d >= 0x90);  // surrogates, > U+10FFFF
  return c1 || overlong || not_a_char ? 0 : n;
}

}  // namespace

std::string shown(std::string_view p) {
  bool plain = !p.starts_with("$'") && (p.empty() || (p.back() != '\\' && p.back() != ' '));
  for (size_t i = 0; plain && i < p.size();) {
    size_t n = printable_utf8(p, i);
    plain = n > 0;
    i += n;
  }
  if (plain) return std::string(p);
  std::string o = "$'";
  for (size_t i = 0; i < p.size();) {
    size_t n = printable_utf8(p, i);
    if (n > 0) {
      for (char ch : p.substr(i, n)) {
        if (ch == '\\' || ch == '\'') o += '\\';
        o += ch;
      }
      i += n;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(p[i++]);
    if (c == '\n') {
      o += "\\n";
    } else if (c == '\r') {
      o += "\\r";
    } else if (c == '\t') {
      o += "\\t";
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      o += b;
    }
  }
  return o + "'";
}

bool valid_relpath(std::string_view p) {
  if (p.empty() || p.size() > wire::kMaxPath || p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view c = p.substr(start, end - start);
    if (c.empty() || c == "." || c == ".." || c.size() > wire::kMaxName) return false;
    if (c.find('\0') != std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

bool normalize_console_path(std::string_view in, std::string& out, std::string& why) {
  if (!in.empty() && in.front() == '/') {
    why = "absolute path is outside the base directory";
    return false;
  }
  std::string s(in);
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  while (s.rfind("./", 0) == 0) s.erase(0, 2);
  if (s == "." || s == "/" || s.empty()) {
    out.clear();
    return true;
  }
  if (!valid_relpath(s)) {
    why = "path leaves the base directory or is malformed";
    return false;
  }
  out = std::move(s);
  return true;
}

std::string_view parent_of(std::string_view p) {
  auto pos = p.rfind('/');
  return pos == std::string_view::npos ? std::string_view{} : p.substr(0, pos);
}

std::string_view leaf_of(std::string_view p) {
  auto pos = p.rfind('/');
  return pos == std::string_view::npos ? p : p.substr(pos + 1);
}

bool is_below(std::string_view p, std::string_view dir) {
  if (dir.empty()) return !p.empty();
  return p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/';
}

std::string join(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string r(dir);
  r += '/';
  r += name;
  return r;
}

bool is_temp_name(std::string_view leaf) {
  return leaf.substr(0, kTempPrefix.size()) == kTempPrefix;
}

bool Excludes::add(const std::string& pat) {
  if (pat.empty() || pat.size() > kMaxPattern || pats_.size() >= kMaxPatterns ||
      std::find(pats_.begin(), pats_.end(), pat) != pats_.end())
    return false;
  pats_.push_back(pat);
  return true;
}

bool Excludes::del(const std::string& pat) {
  auto it = std::find(pats_.begin(), pats_.end(), pat);
  if (it == pats_.end()) return false;
  pats_.erase(it);
  return true;
}

bool Excludes::match(std::string_view base, std::string_view relpath, bool is_dir) const {
  if (pats_.empty()) return false;
  std::string cand(base);
  if (cand.empty() || cand.back() != '/') cand += '/';
  cand += relpath;
  if (is_dir) cand += '/';
  // A pattern of k parts can only match the suffix of k parts (nothing in it matches a '/'
  // but a '/'): one comparison per pattern, not one per suffix.
  auto parts = split_slashes(cand);
  for (auto& pat : pats_) {
    auto pp = split_pattern(pat);
    if (pp.size() > parts.size()) continue;
    size_t off = parts.size() - pp.size();
    bool all = true;
    for (size_t i = 0; all && i < pp.size(); ++i) all = glob_part_match(pp[i], parts[off + i]);
    if (all) return true;
  }
  return false;
}

}  // namespace makuo
