// makuofs's side of /dev/fuse, for what libfuse 3.14 cannot negotiate or send by itself. The
// session's device I/O is wrapped (fuse_session_custom_io), the INIT reply is amended and some
// replies are rewritten on their way to the kernel:
//  - FUSE_HANDLE_KILLPRIV_V2: the kernel marks the superblock SB_NOSEC and stops asking for
//    "security.capability" before every write (a round trip per write(2) otherwise), and leaves
//    clearing set-ID bits to us;
//  - FUSE_PASSTHROUGH (kernel 6.9+): an open file is backed by our descriptor of the base file,
//    and the kernel reads and writes it directly, without a request to us per read or write;
//  - FUSE_OVER_IO_URING (kernel 6.14+, when the fuse module's enable_uring is set): requests
//    are fetched and answered through per-CPU io_uring queues (fs/uring_queues.*), so that a
//    request is served on the CPU that made it: on a virtual machine, waking a thread on
//    another CPU costs more than the request itself.
// Each feature is used only when the kernel offers it; without them makuofs works as before.
#pragma once
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>

struct fuse_session;

namespace makuo::fs {

struct ChannelWants {
  bool passthrough = true;  // not with the kernel's write-back cache
  bool uring = true;
};

// After fuse_session_mount(). Returns 0 or -errno.
int wrap_channel(fuse_session* se, ChannelWants wants);

// Known once INIT was answered.
bool killpriv_v2_active();
bool passthrough_active();
bool uring_active();
// Blocks until INIT was answered (or the session ended): true if it was.
bool wait_init_answered();
// The kernel's largest request payload (for io_uring buffers); valid once INIT was answered.
uint32_t max_payload();

// Passthrough: registers fd as a backing file; the id, or -errno.
int32_t backing_open(int fd);
void backing_close(int32_t id);
// The next open or create reply this thread sends hands the kernel backing file id.
void reply_with_backing(int32_t id);

// Where this thread's replies go instead of the device (io_uring queues): reply() gets the
// whole message (out header first) and returns its size or -errno.
class ReplySink {
 public:
  virtual ssize_t reply(const iovec* iov, int count) = 0;

 protected:
  ~ReplySink() = default;
};
void set_thread_reply_sink(ReplySink* sink);

}  // namespace makuo::fs
