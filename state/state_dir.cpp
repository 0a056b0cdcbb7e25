#include "state/state_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <vector>

namespace makuo::state {
namespace {

// What a release before 0.2 kept in the state directory itself, and where it goes now.
constexpr const char* kLegacyDaemonFiles[] = {"index", "index.log", "last-contact", "tombstones"};
constexpr const char* kLegacyTemporaries[] = {".index.tmp", ".last-contact.tmp", ".tombstones.tmp"};

// Gives the regular file name in dirfd to owner, if it is one (not a link, not hard-linked
// elsewhere). Opened first, so that what is checked is what is chowned.
void give(int dirfd, const char* name, uid_t owner, gid_t group) {
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
      (st.st_uid != owner || st.st_gid != group))
    (void)!fchown(fd, owner, group);
  close(fd);
}

// give() for everything in dirfd.
void give_all(int dirfd, uid_t owner, gid_t group) {
  int d = dup(dirfd);
  DIR* dir = d >= 0 ? fdopendir(d) : nullptr;
  if (!dir) {
    if (d >= 0) close(d);
    return;
  }
  std::vector<std::string> names;
  while (dirent* de = readdir(dir))
    if (de->d_name[0] != '.' || (de->d_name[1] && de->d_name[1] != '.'))
      names.push_back(de->d_name);
  closedir(dir);
  for (auto& n : names) give(dirfd, n.c_str(), owner, group);
}

}  // namespace

std::string default_path(const std::string& base) {
  std::string out = "/var/lib/makuo/";
  size_t i = 0;
  while (i < base.size() && base[i] == '/') ++i;
  if (i == base.size()) return out + "-";
  for (; i < base.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(base[i]);
    if (c == '/') {
      if (out.back() != '-') out += '-';
    } else if (std::isalnum(c) || c == '_' || (c == '.' && out.back() != '/')) {
      out += char(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (out.back() == '-') out.pop_back();
  return out;
}

StateDir::~StateDir() {
  for (int fd : {fd_, journal_, daemon_, notify_})
    if (fd >= 0) close(fd);
}

int StateDir::open(const std::string& path, uid_t owner, gid_t group, std::string& what) {
  path_ = path;
  what = path;
  if (path.empty() || path[0] != '/') return EINVAL;
  // Component by component, none of them a symlink.
  int cur = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0) return errno;
  size_t start = 1;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string comp = path.substr(start, end - start);
    start = end + 1;
    if (comp.empty() || comp == ".") continue;
    what = path.substr(0, end);
    if (comp == "..") {
      close(cur);
      return EINVAL;
    }
    int next = openat(cur, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT) {
      if (mkdirat(cur, comp.c_str(), 0755) != 0 && errno != EEXIST) {
        int e = errno;
        close(cur);
        return e;
      }
      next = openat(cur, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    int e = errno;
    close(cur);
    if (next < 0) return e == ENOTDIR ? ELOOP : e;  // a symlink (or a file) on the way
    cur = next;
  }
  fd_ = cur;
  what = path;
  bool root = geteuid() == 0;
  bool give_away = root && owner != uid_t(-1);
  if (give_away) {
    struct stat st;
    if (fstat(fd_, &st) != 0) return errno;
    if ((st.st_uid != 0 || st.st_gid != 0) && fchown(fd_, 0, 0) != 0) return errno;
    if ((st.st_mode & 07777) != 0755 && fchmod(fd_, 0755) != 0) return errno;
  }
  if (int e = sub(kJournal, give_away ? owner : uid_t(-1), group, journal_, what)) return e;
  if (int e = sub(kDaemon, give_away ? owner : uid_t(-1), group, daemon_, what)) return e;
  if (int e = sub(kNotify, give_away ? owner : uid_t(-1), group, notify_, what)) return e;
  for (const char* n : kLegacyDaemonFiles) {
    struct stat st;
    if (fstatat(fd_, n, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || renameat(fd_, n, daemon_, n) != 0) unlinkat(fd_, n, 0);
  }
  for (const char* n : kLegacyTemporaries) unlinkat(fd_, n, 0);
  if (give_away) {
    give_all(journal_, owner, group);
    give_all(daemon_, owner, group);
  }
  return 0;
}

int StateDir::sub(const char* name, uid_t owner, gid_t group, int& out, std::string& what) {
  what = path_ + "/" + name;
  if (mkdirat(fd_, name, 0700) != 0 && errno != EEXIST) return errno;
  out = openat(fd_, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (out < 0 && (errno == ELOOP || errno == ENOTDIR) && geteuid() == 0) {
    // Something else stands there (a symlink planted in a directory that was not root's): it
    // goes, never followed.
    if (unlinkat(fd_, name, 0) != 0) return errno;
    if (mkdirat(fd_, name, 0700) != 0) return errno;
    out = openat(fd_, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (out < 0) return errno;
  if (owner != uid_t(-1)) {
    struct stat st;
    if (fstat(out, &st) != 0) return errno;
    if ((st.st_uid != owner || st.st_gid != group) && fchown(out, owner, group) != 0) return errno;
    if ((st.st_mode & 07777) != 0700 && fchmod(out, 0700) != 0) return errno;
  }
  return 0;
}

}  // namespace makuo::state
