#include "fs/kernel_channel.hpp"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>

namespace makuo::fs {
namespace {

// Newer than the <linux/fuse.h> of Debian 12 (protocol 7.38); values from the kernel's uapi.
constexpr uint32_t kInitExt = 1u << 30;          // FUSE_INIT_EXT: flags2 follows
constexpr uint32_t kKillprivV2 = 1u << 28;       // FUSE_HANDLE_KILLPRIV_V2
constexpr uint32_t kMaxPagesFlag = 1u << 22;     // FUSE_MAX_PAGES
constexpr uint32_t kPassthrough2 = 1u << 5;      // FUSE_PASSTHROUGH (1ULL << 37) in flags2
constexpr uint32_t kOverIoUring2 = 1u << 9;      // FUSE_OVER_IO_URING (1ULL << 41) in flags2
constexpr uint32_t kFopenPassthrough = 1u << 7;  // FOPEN_PASSTHROUGH
struct BackingMap {                              // struct fuse_backing_map
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
constexpr unsigned long kBackingOpen = _IOW(229, 1, BackingMap);
constexpr unsigned long kBackingClose = _IOW(229, 2, uint32_t);
// fuse_init_in / fuse_init_out field offsets
constexpr size_t kInFlags = 12, kInFlags2 = 16;
constexpr size_t kOutFlags = 12, kOutMaxWrite = 20, kOutMaxPages = 28, kOutFlags2 = 32,
                 kOutMaxStackDepth = 36, kOutMinSize = 40;

ChannelWants g_wants;
int g_devfd = -1;
std::atomic<uint64_t> g_init_unique{0};
std::atomic<uint32_t> g_offered{0}, g_offered2{0}, g_max_payload{0};
std::atomic<bool> g_killpriv{false}, g_passthrough{false}, g_uring{false}, g_done{false};
std::mutex g_mu;
std::condition_variable g_cv;

thread_local int32_t t_backing = 0;
thread_local ReplySink* t_sink = nullptr;

uint32_t get32(const void* base, size_t off) {
  uint32_t v;
  std::memcpy(&v, static_cast<const char*>(base) + off, sizeof v);
  return v;
}
void put32(void* base, size_t off, uint32_t v) {
  std::memcpy(static_cast<char*>(base) + off, &v, sizeof v);
}

ssize_t dev_read(int fd, void* buf, size_t len, void*) {
  ssize_t n = read(fd, buf, len);
  if (!g_done && n >= ssize_t(sizeof(fuse_in_header) + kInFlags2 + 4)) {
    fuse_in_header h;
    std::memcpy(&h, buf, sizeof h);
    if (h.opcode == FUSE_INIT) {
      const char* in = static_cast<const char*>(buf) + sizeof h;
      uint32_t flags = get32(in, kInFlags);
      g_offered = flags;
      g_offered2 = (flags & kInitExt) ? get32(in, kInFlags2) : 0;
      g_init_unique = h.unique;
    }
  }
  return n;
}

// The INIT reply: asks for what the kernel offered and we want.
void amend_init(iovec* iov) {
  char* out = static_cast<char*>(iov[1].iov_base);
  uint32_t flags = get32(out, kOutFlags), flags2 = get32(out, kOutFlags2);
  uint32_t offered = g_offered, offered2 = g_offered2;
  if (offered & kKillprivV2) {
    flags |= kKillprivV2;
    g_killpriv = true;
  }
  if (offered & kInitExt) {
    bool writeback = flags & FUSE_WRITEBACK_CACHE;
    if (g_wants.passthrough && (offered2 & kPassthrough2) && !writeback) {
      flags2 |= kPassthrough2;
      put32(out, kOutMaxStackDepth, 1);  // our backing files are on ordinary file systems
      g_passthrough = true;
    }
    if (g_wants.uring && (offered2 & kOverIoUring2)) {
      flags2 |= kOverIoUring2;
      g_uring = true;
    }
    if (flags2) flags |= kInitExt;
  }
  put32(out, kOutFlags, flags);
  put32(out, kOutFlags2, flags2);
  uint32_t max_write = get32(out, kOutMaxWrite);
  uint16_t max_pages = 0;
  std::memcpy(&max_pages, out + kOutMaxPages, sizeof max_pages);
  uint32_t pages_bytes = (flags & kMaxPagesFlag) ? uint32_t(max_pages) * 4096u : 32u * 4096u;
  g_max_payload = std::max({8192u, max_write, pages_bytes});
}

// A successful open or create reply ends with struct fuse_open_out {fh, open_flags, backing_id}.
void amend_open(iovec* iov, int count) {
  iovec& last = iov[count - 1];
  if (last.iov_len < sizeof(fuse_open_out)) return;
  char* oo = static_cast<char*>(last.iov_base) + last.iov_len - sizeof(fuse_open_out);
  put32(oo, 8, get32(oo, 8) | kFopenPassthrough);
  put32(oo, 12, uint32_t(t_backing));
}

ssize_t dev_writev(int fd, iovec* iov, int count, void*) {
  if (count >= 2 && iov[0].iov_len >= sizeof(fuse_out_header)) {
    fuse_out_header h;
    std::memcpy(&h, iov[0].iov_base, sizeof h);
    if (!g_done && g_init_unique && h.unique == g_init_unique && h.error == 0 &&
        iov[1].iov_len >= kOutMinSize) {
      amend_init(iov);
      ssize_t n = writev(fd, iov, count);
      {
        std::lock_guard lk(g_mu);
        g_done = true;
      }
      g_cv.notify_all();
      return n;
    }
    if (t_backing && h.error == 0 && h.unique != 0) amend_open(iov, count);
  }
  t_backing = 0;
  if (t_sink) return t_sink->reply(iov, count);
  return writev(fd, iov, count);
}

ssize_t dev_splice_receive(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                           unsigned int flags, void*) {
  return splice(fdin, offin, fdout, offout, len, flags);
}

// libfuse sends read data as header + file data spliced through a pipe. A ring thread's reply
// cannot go to the device: the message is read back from the pipe and handed to the sink.
ssize_t dev_splice_send(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                        unsigned int flags, void*) {
  if (!t_sink) return splice(fdin, offin, fdout, offout, len, flags);
  std::vector<char> buf(len);
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fdin, buf.data() + got, len - got);
    if (n <= 0) return n < 0 ? -errno : -EIO;
    got += size_t(n);
  }
  if (len < sizeof(fuse_out_header)) return -EINVAL;
  iovec iov[2] = {{buf.data(), sizeof(fuse_out_header)},
                  {buf.data() + sizeof(fuse_out_header), len - sizeof(fuse_out_header)}};
  ssize_t r = t_sink->reply(iov, 2);
  return r < 0 ? r : ssize_t(len);
}

}  // namespace

int wrap_channel(fuse_session* se, ChannelWants wants) {
  static const fuse_custom_io io = {dev_writev, dev_read, dev_splice_receive, dev_splice_send};
  g_wants = wants;
  g_devfd = fuse_session_fd(se);
  return fuse_session_custom_io(se, &io, g_devfd);
}

bool killpriv_v2_active() {
  return g_killpriv;
}
bool passthrough_active() {
  return g_passthrough;
}
bool uring_active() {
  return g_uring;
}
uint32_t max_payload() {
  return g_max_payload;
}

bool wait_init_answered() {
  std::unique_lock lk(g_mu);
  return g_cv.wait_for(lk, std::chrono::seconds(30), [] { return g_done.load(); });
}

int32_t backing_open(int fd) {
  BackingMap m{fd, 0, 0};
  int id = ioctl(g_devfd, kBackingOpen, &m);
  return id > 0 ? id : -errno;
}

void backing_close(int32_t id) {
  uint32_t v = uint32_t(id);
  ioctl(g_devfd, kBackingClose, &v);
}

void reply_with_backing(int32_t id) {
  t_backing = id;
}

void set_thread_reply_sink(ReplySink* sink) {
  t_sink = sink;
}

}  // namespace makuo::fs
