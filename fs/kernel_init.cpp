#include "fs/kernel_init.hpp"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace makuo::fs {
namespace {

std::atomic<uint64_t> g_init_unique{0};
std::atomic<bool> g_offered{false}, g_active{false}, g_done{false};

ssize_t dev_read(int fd, void* buf, size_t len, void*) {
  ssize_t n = read(fd, buf, len);
  if (!g_done && n >= ssize_t(sizeof(fuse_in_header) + sizeof(uint32_t) * 4)) {
    fuse_in_header h;
    std::memcpy(&h, buf, sizeof h);
    if (h.opcode == FUSE_INIT) {
      uint32_t words[4];  // major, minor, max_readahead, flags
      std::memcpy(words, static_cast<char*>(buf) + sizeof h, sizeof words);
      g_offered = words[3] & FUSE_HANDLE_KILLPRIV_V2;
      g_init_unique = h.unique;
    }
  }
  return n;
}

ssize_t dev_writev(int fd, struct iovec* iov, int count, void*) {
  if (!g_done && count >= 2 && iov[0].iov_len >= sizeof(fuse_out_header) &&
      iov[1].iov_len >= 4 * sizeof(uint32_t)) {
    fuse_out_header h;
    std::memcpy(&h, iov[0].iov_base, sizeof h);
    if (g_init_unique && h.unique == g_init_unique && h.error == 0) {
      g_done = true;
      if (g_offered) {
        uint32_t flags;
        char* p = static_cast<char*>(iov[1].iov_base) + 3 * sizeof(uint32_t);
        std::memcpy(&flags, p, sizeof flags);
        flags |= FUSE_HANDLE_KILLPRIV_V2;
        std::memcpy(p, &flags, sizeof flags);
        g_active = true;
      }
    }
  }
  return writev(fd, iov, count);
}

ssize_t dev_splice_receive(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                           unsigned int flags, void*) {
  return splice(fdin, offin, fdout, offout, len, flags);
}

ssize_t dev_splice_send(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                        unsigned int flags, void*) {
  return splice(fdin, offin, fdout, offout, len, flags);
}

}  // namespace

int negotiate_killpriv_v2(fuse_session* se) {
  static const fuse_custom_io io = {dev_writev, dev_read, dev_splice_receive, dev_splice_send};
  return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

bool killpriv_v2_active() {
  return g_active;
}

}  // namespace makuo::fs
