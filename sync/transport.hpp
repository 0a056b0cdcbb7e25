// What the protocol state machines need from the network: a datagram out, and the time.
// Boost.Asio implements it for real (udp_node.cpp); tests use an in-memory network.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "sync/clock.hpp"

namespace makuo {

struct Endpoint {
  uint32_t addr = 0;  // IPv4, host order
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
  std::string str() const;
};

enum class SendStatus { Ok, WouldBlock, Error };

// How a datagram reached us.
struct Arrival {
  bool group = true;  // sent to the group (else to our own unicast socket)
  // Keyed: its sender proved to be live now (Sealer), or it is not yet known to be; and its
  // seal counter. Keyless: nothing to prove.
  bool proven = true;
  uint64_t counter = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual SendStatus send(const Endpoint& to, std::span<const uint8_t> datagram) = 0;
  virtual Endpoint group() const = 0;
  // Node answered our challenge in the datagram of this seal counter: what it seals from now on
  // is taken, what it sealed before is not.
  virtual void prove(uint64_t node, uint64_t counter) {
    (void)node;
    (void)counter;
  }
};

// Token bucket for -T; rate 0 means "as fast as the socket takes it".
class Pacer {
 public:
  explicit Pacer(uint64_t bytes_per_sec = 0) : rate_(bytes_per_sec) {}
  void set_rate(uint64_t bytes_per_sec) { rate_ = bytes_per_sec; }
  uint64_t rate() const { return rate_; }
  bool allow(size_t bytes, TimePoint now) {
    if (rate_ != 0) {
      refill(now);
      if (tokens_ < 0) return false;
      tokens_ -= double(bytes);
    }
    total_ += bytes;
    return true;
  }
  uint64_t total() const { return total_; }  // bytes allowed so far
  // When a sender held back by the rate should wake up: once a batch's worth of bytes is
  // allowed (at most a millisecond of the rate), not as soon as one datagram is. Waking per
  // datagram cost a wakeup and a send call for every one or two of them.
  TimePoint next_send(TimePoint now, size_t batch_bytes) const {
    if (rate_ == 0 || tokens_ >= 0) return now;
    double batch = std::min(double(batch_bytes), double(rate_) / 1000);
    return now + std::chrono::duration_cast<Duration>(
                     std::chrono::duration<double>((batch - tokens_) / double(rate_)));
  }

 private:
  void refill(TimePoint now) {
    if (last_ == TimePoint{}) last_ = now;
    double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(tokens_ + dt * double(rate_), double(rate_) / 200 + 16384);
  }
  uint64_t rate_;
  uint64_t total_ = 0;
  double tokens_ = 0;
  TimePoint last_{};
};

}  // namespace makuo
