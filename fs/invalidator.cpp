#include "fs/invalidator.hpp"

#define FUSE_USE_VERSION 312
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs/inode_table.hpp"
#include "state/notify.hpp"

namespace makuo::fs {

Invalidator::Invalidator(fuse_session* se, InodeTable& inodes, int sock_dir)
    : se_(se), inodes_(inodes), dir_(fcntl(sock_dir, F_DUPFD_CLOEXEC, 0)) {}

Invalidator::~Invalidator() {
  stop();
  if (dir_ >= 0) close(dir_);
}

int Invalidator::start() {
  if (dir_ < 0) return EBADF;
  name_ = state::notify::socket_name(getpid());
  // Through our descriptor of the directory: the path cannot lead anywhere else.
  std::string path = "/proc/self/fd/" + std::to_string(dir_) + "/" + name_;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return ENAMETOOLONG;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  sock_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock_ < 0) return errno;
  unlinkat(dir_, name_.c_str(), 0);  // a socket left by a mount of ours that died
  if (bind(sock_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return errno;
  thread_ = std::thread([this] { run(); });
  return 0;
}

void Invalidator::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (sock_ >= 0) {
    close(sock_);
    sock_ = -1;
    unlinkat(dir_, name_.c_str(), 0);
  }
}

void Invalidator::run() {
  char buf[state::notify::kMaxPath + 1];
  while (!stop_) {
    pollfd p{sock_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    ssize_t n = recv(sock_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 || size_t(n) > state::notify::kMaxPath) continue;
    invalidate(std::string(buf, size_t(n)));
  }
}

void Invalidator::invalidate(const std::string& rel) {
  if (rel.find('\0') != std::string::npos) return;
  ++handled_;
  struct stat st;
  // The object itself (attributes, and cached pages if it was changed in place) ...
  const char* p = rel.empty() ? "" : rel.c_str();
  if (fstatat(inodes_.root().fd, p, &st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) == 0)
    if (uint64_t ino = inodes_.find(st.st_dev, st.st_ino))
      fuse_lowlevel_notify_inval_inode(se_, ino, 0, 0);
  if (rel.empty()) return;
  // ... and its name, which may now lead to another object or to none.
  drop_cached_name(se_, inodes_, rel);
}

void drop_cached_name(fuse_session* se, InodeTable& inodes, const std::string& rel) {
  size_t slash = rel.rfind('/');
  std::string parent = slash == std::string::npos ? std::string() : rel.substr(0, slash);
  std::string leaf = slash == std::string::npos ? rel : rel.substr(slash + 1);
  struct stat st;
  if (fstatat(inodes.root().fd, parent.c_str(), &st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0)
    return;
  if (uint64_t pino = inodes.find(st.st_dev, st.st_ino))
    fuse_lowlevel_notify_inval_entry(se, pino, leaf.c_str(), leaf.size());
}

}  // namespace makuo::fs
