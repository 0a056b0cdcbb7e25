#include "sync/dir_digest.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/fsops.hpp"
#include "sync/hash.hpp"
#include "sync/paths.hpp"
#include "sync/tree_index.hpp"

namespace makuo {
namespace {

void add_version(std::string& rec, const PathVersion& v) {
  rec += ' ' + v.origin;
  for (auto& d : v.vv.dots()) rec += ' ' + std::to_string(d.node) + ':' + std::to_string(d.counter);
}

}  // namespace

int dir_children(int basefd, const std::string& rel, std::vector<wire::Entry>& out) {
  int dfd = open_beneath(basefd, rel, O_RDONLY | O_DIRECTORY);
  if (dfd < 0) return -dfd;
  Fd d(dfd);
  std::vector<std::string> names;
  if (int e = list_dir(dfd, names)) return e;
  for (auto& n : names) {
    if (is_temp_name(n)) continue;
    struct stat st;
    if (fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    wire::Entry e = entry_from_stat(st, join(rel, n));
    if (S_ISLNK(st.st_mode)) {
      std::string t(size_t(st.st_size) + 2, '\0');
      ssize_t len = readlinkat(dfd, n.c_str(), t.data(), t.size());
      if (len <= 0) continue;
      t.resize(size_t(len));
      e.link = std::move(t);
    }
    out.push_back(std::move(e));
  }
  return 0;
}

wire::Hash128 digest_of(const std::vector<wire::Entry>& children,
                        const std::vector<wire::Entry>& tombstones) {
  Hasher h;
  for (auto& e : children) {
    std::string rec = std::string(leaf_of(e.path)) + '\0' + char(e.kind) + '\0' +
                      std::to_string(e.mode) + ' ' + e.user + ':' + e.group + ' ' +
                      std::to_string(e.uid) + ':' + std::to_string(e.gid) + ' ' +
                      (e.kind == wire::Kind::Dir ? std::string("-") : std::to_string(e.mtime_ns)) +
                      ' ' + std::to_string(e.kind == wire::Kind::File ? e.size : 0) + ' ' +
                      std::to_string(e.rdev) + ' ' + e.link;
    add_version(rec, e.version);
    rec += '\n';
    h.update({reinterpret_cast<const uint8_t*>(rec.data()), rec.size()});
  }
  for (auto& t : tombstones) {
    std::string rec = std::string(leaf_of(t.path)) + '\0' + char(wire::Kind::Absent) + '\0';
    add_version(rec, t.version);
    rec += '\n';
    h.update({reinterpret_cast<const uint8_t*>(rec.data()), rec.size()});
  }
  return h.digest();
}

std::vector<wire::Entry> tombstone_entries(const TreeIndex& index, const std::string& rel) {
  std::vector<wire::Entry> v;
  for (auto& [p, t] : index.tombstones_in(rel)) v.push_back(entry_of_tombstone(p, t));
  return v;
}

wire::Hash128 versioned_digest(std::vector<wire::Entry>& children, const TreeIndex* index,
                               const std::string& rel) {
  std::vector<wire::Entry> tombs;
  if (index) {
    for (auto& e : children) index->annotate(e, "?", UINT64_MAX);
    tombs = tombstone_entries(*index, rel);
  }
  return digest_of(children, tombs);
}

}  // namespace makuo
