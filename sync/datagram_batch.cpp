#include "sync/datagram_batch.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // linux/udp.h; glibc's netinet/udp.h has it from 2.29 on
#endif

namespace makuo {

namespace {

sockaddr_in to_sockaddr(const Endpoint& e) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(e.addr);
  sa.sin_port = htons(e.port);
  return sa;
}

bool transient(int e) {
  return e == EAGAIN || e == ENOBUFS || e == EINTR;
}

}  // namespace

bool DatagramBatch::fits(const Endpoint& to, size_t bytes) const {
  if (count_ == 0) return bytes <= kMaxBytes;
  // Once a shorter datagram closed the batch, nothing may follow it.
  return to == to_ && last_ == seg_ && bytes <= seg_ && count_ < kMaxDatagrams &&
         bytes_ + bytes <= kMaxBytes;
}

std::span<uint8_t> DatagramBatch::add_space(const Endpoint& to, size_t bytes) {
  if (count_ == 0) {
    to_ = to;
    seg_ = bytes;
  }
  std::span<uint8_t> room(buf_.data() + bytes_, bytes);
  bytes_ += bytes;
  last_ = bytes;
  ++count_;
  return room;
}

void DatagramBatch::add(const Endpoint& to, std::span<const uint8_t> d) {
  std::memcpy(add_space(to, d.size()).data(), d.data(), d.size());
}

void DatagramBatch::drop_front(size_t n) {
  if (n >= count_) {
    count_ = bytes_ = seg_ = last_ = 0;
    return;
  }
  size_t gone = n * seg_;  // only whole segments precede the last
  std::memmove(buf_.data(), buf_.data() + gone, bytes_ - gone);
  bytes_ -= gone;
  count_ -= n;
  if (count_ == 1) seg_ = last_;
}

SendStatus DatagramBatch::flush(int fd) {
  while (count_ > 0) {
    SendStatus s = (gso_ && count_ > 1) ? send_gso(fd) : send_each(fd);
    if (s == SendStatus::WouldBlock) return s;
  }
  return SendStatus::Ok;
}

SendStatus DatagramBatch::send_gso(int fd) {
  sockaddr_in sa = to_sockaddr(to_);
  iovec iov{buf_.data(), bytes_};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr mh{};
  mh.msg_name = &sa;
  mh.msg_namelen = sizeof sa;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl;
  mh.msg_controllen = sizeof ctl;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg = uint16_t(seg_);
  std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
  ++calls_;
  if (::sendmsg(fd, &mh, 0) >= 0) {
    sent_ += count_;
    drop_front(count_);
    return SendStatus::Ok;
  }
  int e = errno;
  if (e == EINTR) return SendStatus::Ok;  // nothing went; flush() tries again
  if (transient(e)) return SendStatus::WouldBlock;
  // Refused for good: by the route or a filter (then each datagram is refused too), or because
  // the kernel cannot segment this (no GSO, or a route's MTU below our datagrams, where single
  // sends still go out, fragmented). Sending one by one tells which.
  uint64_t refused = errors_;
  SendStatus s = send_each(fd);
  if (errors_ == refused) {
    spdlog::info("UDP segmentation offload refused ({}): sending datagram by datagram",
                 std::strerror(e));
    gso_ = false;
  }
  return s;
}

SendStatus DatagramBatch::send_each(int fd) {
  sockaddr_in sa = to_sockaddr(to_);
  std::array<mmsghdr, kMaxDatagrams> m{};
  std::array<iovec, kMaxDatagrams> iov{};
  size_t off = 0;
  for (size_t i = 0; i < count_; ++i) {
    iov[i] = {buf_.data() + off, length(i)};
    off += length(i);
    m[i].msg_hdr.msg_name = &sa;
    m[i].msg_hdr.msg_namelen = sizeof sa;
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
  }
  ++calls_;
  int n = ::sendmmsg(fd, m.data(), unsigned(count_), 0);
  if (n > 0) {
    sent_ += unsigned(n);
    drop_front(size_t(n));
    return SendStatus::Ok;
  }
  int e = errno;
  if (e == EINTR) return SendStatus::Ok;
  if (transient(e)) return SendStatus::WouldBlock;
  // sendmmsg reports the first datagram's error only: that one is refused, the rest retried.
  ++errors_;
  drop_front(1);
  return SendStatus::Ok;
}

}  // namespace makuo
