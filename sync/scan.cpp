#include "sync/scan.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "sync/fsops.hpp"
#include "sync/hash.hpp"

namespace makuo {
namespace {

struct Walker {
  int basefd;
  const ScanOptions& opt;
  ScanResult& res;
  std::map<std::pair<dev_t, ino_t>, size_t> links;  // -> the entry of its first name

  // Adds path (already lstat'ed as st, inside directory dirfd under the name leaf).
  void add(int dirfd, const std::string& leaf, const std::string& path, const struct stat& st) {
    if (S_ISSOCK(st.st_mode)) {
      res.skips.push_back("skip: unix domain socket " + path);
      return;
    }
    if (opt.owner_only && st.st_uid != *opt.owner_only && !S_ISDIR(st.st_mode)) {
      res.skips.push_back("skip: owner unmatch " + path + " (" + std::to_string(st.st_uid) +
                          " != " + std::to_string(*opt.owner_only) + ")");
      return;
    }
    if (opt.with_hash && !S_ISREG(st.st_mode)) return;
    wire::Entry e = entry_from_stat(st, path);
    if (S_ISLNK(st.st_mode)) {
      std::string t(size_t(st.st_size) + 1, '\0');
      ssize_t n = readlinkat(dirfd, leaf.c_str(), t.data(), t.size());
      if (n < 0) {
        res.errors.push_back("error: readlink error " + path);
        return;
      }
      t.resize(size_t(n));
      e.link = std::move(t);
      e.size = e.link.size();
    } else if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !opt.with_hash) {
      auto [it, fresh] = links.try_emplace({st.st_dev, st.st_ino}, res.entries.size());
      if (!fresh) {
        wire::Entry& first = res.entries[it->second];
        first.linked = true;
        e.kind = wire::Kind::HardLink;
        e.link = first.path;
      }
    }
    if (opt.with_hash) {
      int fd = openat(dirfd, leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        res.errors.push_back("error: " + std::string(strerror(errno)) + " " + path);
        return;
      }
      Fd f(fd);
      Hasher h;
      if (int err = hash_fd(fd, 0, h)) {
        res.errors.push_back("error: " + std::string(strerror(err)) + " " + path);
        return;
      }
      e.hash = h.digest();
    }
    res.entries.push_back(std::move(e));
  }

  // Adds the contents of directory dirfd (path prefix dir), post-order.
  void walk(int dirfd, const std::string& dir) {
    std::vector<std::string> names;
    if (list_dir(dirfd, names) != 0) {
      res.errors.push_back("error: directory open error " + (dir.empty() ? "." : dir));
      return;
    }
    for (auto& n : names) {
      if (is_temp_name(n)) continue;
      std::string path = join(dir, n);
      struct stat st;
      if (fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished
      bool is_dir = S_ISDIR(st.st_mode);
      if (opt.excludes && opt.excludes->match(opt.base_path, path, is_dir)) continue;
      if (path.size() > wire::kMaxPath) {
        res.errors.push_back("error: path too long " + path.substr(0, 64) + "...");
        continue;
      }
      if (is_dir) {
        int sub = openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
          res.errors.push_back("error: directory open error " + path);
        } else {
          Fd s(sub);
          walk(sub, path);
        }
      }
      add(dirfd, n, path, st);
    }
  }
};

}  // namespace

ScanResult scan(int basefd, const ScanOptions& opt) {
  ScanResult res;
  Walker w{basefd, opt, res, {}};
  if (opt.root.empty()) {
    if (opt.recursive) w.walk(basefd, "");
    return res;
  }
  struct stat st;
  if (int err = lstat_beneath(basefd, opt.root, st)) {
    if (err == ENOENT) res.root_missing = true;
    res.errors.push_back("error: " + std::string(strerror(err)) + " " + opt.root);
    return res;
  }
  int pfd = open_beneath(basefd, parent_of(opt.root), O_RDONLY | O_DIRECTORY);
  if (pfd < 0) {
    res.errors.push_back("error: " + std::string(strerror(-pfd)) + " " + opt.root);
    return res;
  }
  Fd parent(pfd);
  if (opt.recursive && S_ISDIR(st.st_mode)) {
    int sub = open_beneath(basefd, opt.root, O_RDONLY | O_DIRECTORY);
    if (sub >= 0) {
      Fd s(sub);
      w.walk(sub, opt.root);
    }
  }
  w.add(parent.get(), std::string(leaf_of(opt.root)), opt.root, st);
  return res;
}

}  // namespace makuo
