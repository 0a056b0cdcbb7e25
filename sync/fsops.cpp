#include "sync/fsops.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <unordered_map>

#include "sync/hash.hpp"
#include "sync/paths.hpp"

namespace makuo {

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int open_beneath(int basefd, std::string_view rel, int flags, mode_t mode) {
  std::string p = rel.empty() ? std::string(".") : std::string(rel);
  struct open_how how {};
  how.flags = uint64_t(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = syscall(SYS_openat2, basefd, p.c_str(), &how, sizeof how);
    if (fd >= 0) return int(fd);
    if (errno == EINTR || errno == EAGAIN) continue;
    return -errno;
  }
}

int ensure_dir(int basefd, std::string_view rel, bool replace_symlink, mode_t leaf_mode,
               std::vector<std::string>* created) {
  int fd = open_beneath(basefd, rel, O_RDONLY | O_DIRECTORY);
  if (fd >= 0 || (fd != -ENOENT && fd != -ENOTDIR && fd != -ELOOP)) return fd;
  Fd cur(dup(basefd));
  if (!cur) return -errno;
  size_t start = 0;
  while (start < rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    std::string comp(rel.substr(start, end - start));
    int next = open_beneath(cur.get(), comp, O_RDONLY | O_DIRECTORY);
    bool leaf = end == rel.size();
    // A file where the sender has a directory: the push wins, as in makuosan. A symlink is
    // never walked through: only a directory entry for that very path replaces it.
    if (next == -ENOTDIR || (next == -ELOOP && leaf && replace_symlink)) {
      if (unlinkat(cur.get(), comp.c_str(), 0) != 0) return -errno;
      next = -ENOENT;
    }
    if (next == -ENOENT) {
      if (mkdirat(cur.get(), comp.c_str(), leaf ? leaf_mode : 0700) != 0) {
        if (errno != EEXIST) return -errno;
      } else if (created) {
        created->emplace_back(rel.substr(0, end));
      }
      next = open_beneath(cur.get(), comp, O_RDONLY | O_DIRECTORY);
    }
    if (next < 0) return next;
    cur = Fd(next);
    start = end + 1;
  }
  return cur.release();
}

Fd lock_unless_written(int dirfd, std::string_view rel, bool& being_written) {
  being_written = false;
  int fd = open_beneath(dirfd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return {};
  Fd f(fd);
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return f;
  being_written = errno == EWOULDBLOCK;
  return {};
}

bool open_for_writing(int dirfd, std::string_view rel) {
  bool written;
  lock_unless_written(dirfd, rel, written);
  return written;
}

int lstat_beneath(int basefd, std::string_view rel, struct stat& st) {
  if (rel.empty()) return fstat(basefd, &st) == 0 ? 0 : errno;
  int dfd = open_beneath(basefd, parent_of(rel), O_RDONLY | O_DIRECTORY);
  if (dfd < 0) return -dfd;
  Fd d(dfd);
  std::string leaf(leaf_of(rel));
  return fstatat(d.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

int list_dir(int dirfd, std::vector<std::string>& names) {
  // A dup would share (and move) the caller's read position; "." opens the directory afresh.
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  DIR* d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return e;
  }
  names.clear();
  while (dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return 0;
}

int remove_tree_at(int dirfd, const std::string& name) {
  if (unlinkat(dirfd, name.c_str(), 0) == 0) return 0;
  if (errno != EISDIR && errno != EPERM) return errno;
  int sub = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (sub < 0) return errno;
  Fd s(sub);
  std::vector<std::string> names;
  int err = list_dir(sub, names);
  for (auto& n : names)
    if (int e = remove_tree_at(sub, n); e && !err) err = e;
  if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && !err) err = errno;
  return err;
}

int write_all(int fd, const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  while (n) {
    ssize_t w = ::write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    b += w;
    n -= size_t(w);
  }
  return 0;
}

std::string temp_name() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(kTempPrefix) + buf;
}

wire::Kind kind_of(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFDIR:
      return wire::Kind::Dir;
    case S_IFLNK:
      return wire::Kind::Symlink;
    case S_IFIFO:
      return wire::Kind::Fifo;
    case S_IFCHR:
      return wire::Kind::CharDev;
    case S_IFBLK:
      return wire::Kind::BlockDev;
    default:
      return wire::Kind::File;
  }
}

mode_t type_bits(wire::Kind k) {
  switch (k) {
    case wire::Kind::Dir:
      return S_IFDIR;
    case wire::Kind::Symlink:
      return S_IFLNK;
    case wire::Kind::Fifo:
      return S_IFIFO;
    case wire::Kind::CharDev:
      return S_IFCHR;
    case wire::Kind::BlockDev:
      return S_IFBLK;
    default:
      return S_IFREG;
  }
}

int64_t mtime_ns(const struct stat& st) {
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

FileStamp stamp_of(const struct stat& st) {
  return {.exists = true,
          .dev = st.st_dev,
          .ino = st.st_ino,
          .size = st.st_size,
          .mtime_ns = mtime_ns(st),
          .ctime_ns = int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
}

namespace {
// Names looked up once (the name service may be slow, or remote), in caches of bounded size:
// names arrive from the wire, as many different ones as a peer cares to send.
constexpr size_t kNamesCached = 4096;
std::mutex g_names_mu;
std::unordered_map<uid_t, std::string> g_user_names;
std::unordered_map<gid_t, std::string> g_group_names;
std::unordered_map<std::string, uid_t> g_user_ids;
std::unordered_map<std::string, gid_t> g_group_ids;

template <class Map, class Key, class Lookup>
typename Map::mapped_type cached(Map& m, const Key& k, typename Map::mapped_type none,
                                 Lookup lookup) {
  std::lock_guard lk(g_names_mu);
  if (auto it = m.find(k); it != m.end()) return it->second;
  if (m.size() >= kNamesCached) m.clear();
  auto v = lookup();
  m.emplace(k, v ? *v : none);
  return v ? *v : none;
}

std::string user_name(uid_t uid) {
  return cached(g_user_names, uid, std::string(), [&]() -> std::optional<std::string> {
    if (passwd* pw = getpwuid(uid)) return pw->pw_name;
    return std::nullopt;
  });
}

std::string group_name(gid_t gid) {
  return cached(g_group_names, gid, std::string(), [&]() -> std::optional<std::string> {
    if (group* gr = getgrgid(gid)) return gr->gr_name;
    return std::nullopt;
  });
}
}  // namespace

bool still_there(int basefd, const wire::Entry& listed) {
  struct stat st;
  if (lstat_beneath(basefd, listed.path, st) != 0) return false;
  return kind_of(st.st_mode) == listed.kind && (st.st_mode & 07777) == listed.mode &&
         st.st_uid == listed.uid && st.st_gid == listed.gid && mtime_ns(st) == listed.mtime_ns &&
         (S_ISDIR(st.st_mode) || uint64_t(st.st_size) == listed.size);
}

wire::Entry entry_from_stat(const struct stat& st, std::string path) {
  wire::Entry e;
  e.kind = kind_of(st.st_mode);
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.user = user_name(st.st_uid);
  e.group = group_name(st.st_gid);
  e.size = e.kind == wire::Kind::File || e.kind == wire::Kind::Symlink ? uint64_t(st.st_size) : 0;
  e.mtime_ns = mtime_ns(st);
  if (e.kind == wire::Kind::CharDev || e.kind == wire::Kind::BlockDev) e.rdev = st.st_rdev;
  e.path = std::move(path);
  return e;
}

uid_t local_uid(const wire::Entry& e) {
  if (e.user.empty()) return e.uid;
  uid_t u = cached(g_user_ids, e.user, uid_t(-1), [&]() -> std::optional<uid_t> {
    if (passwd* pw = getpwnam(e.user.c_str())) return pw->pw_uid;
    return std::nullopt;
  });
  return u == uid_t(-1) ? e.uid : u;
}

gid_t local_gid(const wire::Entry& e) {
  if (e.group.empty()) return e.gid;
  gid_t g = cached(g_group_ids, e.group, gid_t(-1), [&]() -> std::optional<gid_t> {
    if (group* gr = getgrnam(e.group.c_str())) return gr->gr_gid;
    return std::nullopt;
  });
  return g == gid_t(-1) ? e.gid : g;
}

std::optional<wire::Hash128> content_hash_beneath(int basefd, std::string_view rel) {
  Fd f(open_beneath(basefd, rel, O_RDONLY));
  Hasher h;
  if (!f || hash_fd(f.get(), 0, h) != 0) return std::nullopt;
  return h.digest();
}

int hash_fd(int fd, uint64_t from, Hasher& h) {
  static thread_local std::vector<uint8_t> buf(1 << 18);
  uint64_t off = from;
  for (;;) {
    ssize_t n = pread(fd, buf.data(), buf.size(), off_t(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    h.update({buf.data(), size_t(n)});
    off += uint64_t(n);
  }
}

}  // namespace makuo
