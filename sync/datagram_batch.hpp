// Consecutive datagrams to one destination, handed to the kernel in one call. With UDP GSO
// (UDP_SEGMENT, Linux 4.18+) the whole batch crosses the socket, IP and netfilter layers once
// and is cut into datagrams at the device, in software where the device cannot: half the
// sender's kernel time per byte on a veth. Where the kernel refuses GSO (old kernel, a route
// whose MTU is below our datagrams) the batch goes out with one sendmmsg instead, and stays so.
//
// A batch holds datagrams of one size, except the last, which may be shorter (GSO's rule).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sync/transport.hpp"

namespace makuo {

class DatagramBatch {
 public:
  static constexpr size_t kMaxDatagrams = 64;  // UDP_MAX_SEGMENTS of every kernel since 4.18
  static constexpr size_t kMaxBytes = 65507;   // one IPv4 datagram's payload

  // Whether d can join the batch (an empty batch takes any datagram of up to kMaxBytes).
  bool fits(const Endpoint& to, size_t bytes) const;
  void add(const Endpoint& to, std::span<const uint8_t> d);  // requires fits()
  // Room for a datagram of bytes at the end of the batch, for the caller to fill (a sealer
  // writes there directly). Requires fits().
  std::span<uint8_t> add_space(const Endpoint& to, size_t bytes);

  // Ok: everything went (or was refused for good: counted in errors()). WouldBlock: the socket
  // is full; what did not go stays here, in order, for the next flush.
  SendStatus flush(int fd);

  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  bool gso() const { return gso_; }
  void disable_gso() { gso_ = false; }
  uint64_t sent() const { return sent_; }      // datagrams the kernel took
  uint64_t errors() const { return errors_; }  // datagrams refused for good
  uint64_t calls() const { return calls_; }    // send system calls made

 private:
  SendStatus send_gso(int fd);
  SendStatus send_each(int fd);
  void drop_front(size_t n);
  size_t length(size_t i) const { return i + 1 < count_ ? seg_ : last_; }

  std::vector<uint8_t> buf_ = std::vector<uint8_t>(kMaxBytes);  // never resized
  Endpoint to_{};
  size_t count_ = 0, seg_ = 0, last_ = 0, bytes_ = 0;
  bool gso_ = true;
  uint64_t sent_ = 0, errors_ = 0, calls_ = 0;
};

}  // namespace makuo
