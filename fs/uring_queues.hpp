// FUSE over io_uring (kernel 6.14+): one queue per CPU, each served by a few threads of ours
// bound to that CPU, each with an io_uring of its own and one registered entry. The kernel
// puts a request on the queue of the CPU that made it and completes an idle entry with it;
// its thread hands it to libfuse (fuse_session_process_buf), catches the reply on its way
// out (kernel_channel's ReplySink) and commits it together with the fetch of the next
// request, in one submission. Requester and server thus stay on one CPU: no cross-CPU
// wake-up per request, which on a virtual machine costs several times what the request
// does. One entry per thread, because the kernel hands a request to any idle entry of the
// queue: a thread that waits inside a request (a slow disk, a frozen base) then holds only
// its own, and the CPU's next requests go to the others. Forgets, interrupts and
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

  // One queue per possible CPU, served by per_cpu threads; payload: the kernel's largest
  // request payload. Returns 0 once every thread registered its entry, or -errno (what went
  // wrong is in error()); the kernel then keeps using /dev/fuse.
  int start(unsigned per_cpu, uint32_t payload);
  void stop();
  const std::string& error() const { return error_; }
  uint64_t requests() const;

  struct Server;

 private:
  fuse_session* se_;
  int devfd_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::string error_;
};

// The CPUs the kernel may run on (/sys/devices/system/cpu/possible): one queue each.
unsigned possible_cpus();

}  // namespace makuo::fs
