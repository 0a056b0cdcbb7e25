#include "sync/rescan.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "sync/fsops.hpp"

namespace makuo {

RescanStats rescan(int basefd, const std::string& base_path, const Excludes* excludes,
                   TreeIndex& index, const std::string& self, int64_t down_since_ns) {
  RescanStats s;
  uint64_t when = uint64_t(std::max<int64_t>(down_since_ns, 0));
  // The index's own keys of the paths found on disk (a pointer each, not a copy of the path).
  std::vector<const std::string*> seen;
  std::unordered_map<std::string, int64_t> dir_mtime;  // of the directories on disk
  auto excluded = [&](const std::string& p, bool dir) {
    return excludes && excludes->match(base_path, p, dir);
  };
  struct stat bst;
  if (fstat(basefd, &bst) == 0) dir_mtime[""] = mtime_ns(bst);
  std::vector<std::pair<std::string, int>> todo{{"", dup(basefd)}};
  while (!todo.empty()) {
    auto [dir, fd] = todo.back();
    todo.pop_back();
    if (fd < 0) continue;
    std::vector<std::string> names;
    list_dir(fd, names);
    for (auto& name : names) {
      if (is_temp_name(name)) continue;
      struct stat st;
      if (fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      std::string path = join(dir, name);
      bool is_dir = S_ISDIR(st.st_mode);
      if (excluded(path, is_dir)) continue;
      ++s.entries;
      IndexEntry now = index_entry_of(st);
      const IndexEntry* old = index.find(path);
      if (old && same_state(*old, st)) {
        // unchanged
      } else if (!old && index.fresh()) {
        index.put(path, now);  // there before makuo kept versions
      } else {
        now.version = bump(index.version_at(path), self, when);
        if (old && old->kind == wire::Kind::Dir && !is_dir) index.erase_tree(path);
        index.put(path, now);
        ++(old ? s.changed : s.added);
      }
      if (auto it = index.entries().find(path); it != index.entries().end())
        seen.push_back(&it->first);
      if (is_dir) {
        dir_mtime[path] = mtime_ns(st);
        int sub = openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) todo.emplace_back(path, sub);
      }
    }
    close(fd);
  }
  std::sort(seen.begin(), seen.end(), std::less<const std::string*>());
  std::vector<std::pair<std::string, IndexEntry>> gone;
  for (auto& [p, e] : index.entries())
    if (!std::binary_search(seen.begin(), seen.end(), &p, std::less<const std::string*>()))
      gone.emplace_back(p, e);
  std::vector<const std::string*>().swap(seen);
  for (auto& [p, e] : gone) {
    bool is_dir = e.kind == wire::Kind::Dir;
    bool deleted = false;
    if (down_since_ns > 0 && !excluded(p, is_dir)) {
      // The nearest directory that is still there tells whether something was removed in it.
      std::string a(parent_of(p));
      while (!a.empty() && !dir_mtime.count(a)) a = std::string(parent_of(a));
      auto it = dir_mtime.find(a);
      deleted = it != dir_mtime.end() && it->second > down_since_ns;
    }
    if (deleted) {
      index.bury(p, bump(e.version, self, when), down_since_ns);
      ++s.deleted;
    } else {
      index.forget(p);
      ++s.forgotten;
    }
  }
  return s;
}

}  // namespace makuo
