// Keeps the mount's kernel caches honest about what the daemon writes into the base directory
// behind it: the mount's side of STATE/notify (state/notify.hpp; the directory is the daemon's
// user's: the socket is made there through our descriptor of it and never chowned by name); a
// thread of its own (never a request handler) asks the kernel to drop the cached name and
// attributes.
#pragma once
#include <atomic>
#include <string>
#include <thread>

struct fuse_session;

namespace makuo::fs {

class InodeTable;

// Asks the kernel to forget the name rel (relative to the base directory) in its cache: the
// next use looks it up again. Never from a request handler (the kernel may wait for one).
void drop_cached_name(fuse_session* se, InodeTable& inodes, const std::string& rel);

class Invalidator {
 public:
  // sock_dir: a descriptor of the directory where mounts' sockets live (StateDir::notify_fd).
  Invalidator(fuse_session* se, InodeTable& inodes, int sock_dir);
  ~Invalidator();
  // Binds the socket (mode 0777 less the umask: the directory decides who reaches it) and starts
  // the thread. 0 or errno.
  int start();
  void stop();
  uint64_t handled() const { return handled_; }

 private:
  void run();
  void invalidate(const std::string& rel);

  fuse_session* se_;
  InodeTable& inodes_;
  int dir_ = -1;
  std::string name_;
  int sock_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> handled_{0};
  std::thread thread_;
};

}  // namespace makuo::fs
