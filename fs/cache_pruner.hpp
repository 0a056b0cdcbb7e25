// Keeps the kernel's cache of the mount's inodes within our descriptors: each inode the kernel
// holds costs us an O_PATH descriptor (fs/inode_table.hpp), and the kernel lets go of cached
// inodes only under memory pressure, so a walk of a tree larger than RLIMIT_NOFILE would leave
// every later lookup failing with EMFILE. When the table grows past its high-water mark, a
// thread of its own (never a request handler) asks the kernel to drop the names of the least
// recently looked-up quarter; the kernel then forgets the inodes no one uses.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

struct fuse_session;

namespace makuo::fs {

class Passthrough;

class CachePruner {
 public:
  // high: the most inodes we keep before pruning; pruning aims at three quarters of it.
  CachePruner(fuse_session* se, Passthrough& fs, size_t high);
  ~CachePruner();
  void start();
  void stop();

 private:
  void run();
  // Asks the kernel to drop enough names to bring `held` entries to the low mark; how many.
  size_t prune(size_t held);

  fuse_session* se_;
  Passthrough& fs_;
  size_t high_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false, stop_ = false;
  std::chrono::steady_clock::time_point last_log_{};
  std::thread thread_;
};

}  // namespace makuo::fs
