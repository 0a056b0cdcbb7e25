// FUSE over io_uring (kernel 6.14+): one queue per CPU, each served by a thread of ours bound
// to that CPU with an io_uring of its own. The kernel puts a request on the queue of the CPU
// that made it and completes one of our registered entries with it; the thread hands it to
// libfuse (fuse_session_process_buf), catches the reply on its way out (kernel_channel's
// ReplySink) and commits it together with the fetch of the next request, in one submission.
// Requester and server thus stay on one CPU: no cross-CPU wake-up per request, which on a
// virtual machine costs several times what the request does. Forgets, interrupts and
// notifications keep using /dev/fuse (libfuse's own loop), as the kernel wants.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

struct fuse_session;

namespace makuo::fs {

class UringQueues {
 public:
  UringQueues(fuse_session* se, int devfd);
  ~UringQueues();
  UringQueues(const UringQueues&) = delete;
  UringQueues& operator=(const UringQueues&) = delete;

  // One queue per possible CPU with depth entries each; payload: the kernel's largest request
  // payload. Returns 0 once every queue registered its entries, or -errno (what went wrong is
  // in error()); the kernel then keeps using /dev/fuse.
  int start(unsigned depth, uint32_t payload);
  void stop();
  const std::string& error() const { return error_; }
  uint64_t requests() const;

  struct Queue;

 private:
  fuse_session* se_;
  int devfd_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::string error_;
};

// The CPUs the kernel may run on (/sys/devices/system/cpu/possible): one queue each.
unsigned possible_cpus();

}  // namespace makuo::fs
