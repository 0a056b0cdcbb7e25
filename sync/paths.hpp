// Relative paths inside the base directory: validation of what comes from the network or a
// console, and makuosan's exclude-pattern semantics.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace makuo {

// A path as it travels: relative, '/'-separated, no empty, "." or ".." components, no NUL,
// bounded length. Anything else is refused before it touches the file system.
bool valid_relpath(std::string_view p);

// Console input: strips "./" prefixes and trailing '/', maps "" and "." to "" (the base itself).
// Returns false (with why) for absolute paths and anything that would leave the base.
bool normalize_console_path(std::string_view in, std::string& out, std::string& why);

std::string_view parent_of(std::string_view p);  // "" for a top-level name
std::string_view leaf_of(std::string_view p);
// Whether relative path p lies strictly below directory dir (everything lies below "").
bool is_below(std::string_view p, std::string_view dir);
std::string join(std::string_view dir, std::string_view name);

// A path as a console line or a log line shows it: as it is, or, when it holds a byte that
// would cut or fake a line (control characters, DEL) or cannot be told from its quoting (a
// trailing space or backslash, a leading $'), in
// bash's $'...' quoting ($'a\nb'), which the console also reads back (ctl/console_line).
std::string shown(std::string_view path);

// Our receivers' temporary files: hidden, fixed prefix, removed at start.
constexpr std::string_view kTempPrefix = ".makuo-tmp-";
bool is_temp_name(std::string_view leaf);

// makuosan's exclude matching (reference §2.7): each pattern is matched as fnmatch with
// FNM_PATHNAME would (sync/glob) against "BASE/relpath" (plus "/" for directories) and
// against every suffix that starts after a '/', so "*.log" matches anywhere, "cache/" only
// directories, "/abs/*" from the root.
class Excludes {
 public:
  static constexpr size_t kMaxPattern = 1024, kMaxPatterns = 256;
  // false if empty, already present, longer than kMaxPattern or one too many.
  bool add(const std::string& pat);
  bool del(const std::string& pat);
  void clear() { pats_.clear(); }
  const std::vector<std::string>& list() const { return pats_; }
  bool empty() const { return pats_.empty(); }
  bool match(std::string_view base, std::string_view relpath, bool is_dir) const;

 private:
  std::vector<std::string> pats_;
};

}  // namespace makuo
