#include "sync/paths.hpp"

#include <fnmatch.h>

#include <algorithm>

#include "sync/wire.hpp"

namespace makuo {

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
  if (pat.empty() || std::find(pats_.begin(), pats_.end(), pat) != pats_.end()) return false;
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
  for (auto& pat : pats_) {
    for (size_t pos = 0; pos < cand.size(); ++pos) {
      if (pos != 0 && cand[pos - 1] != '/') continue;
      if (fnmatch(pat.c_str(), cand.c_str() + pos, FNM_PATHNAME) == 0) return true;
    }
  }
  return false;
}

}  // namespace makuo
