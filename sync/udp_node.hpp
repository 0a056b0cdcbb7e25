// Binds an Engine to real sockets with Boost.Asio: a multicast socket bound to the group (a
// datagram sent to this host's address never reaches it), a unicast socket that sends
// everything (so answers come back to it, and the engine takes there only what members send),
// one timer.
#pragma once
#include <boost/asio.hpp>
#include <functional>

#include "sync/crypto.hpp"
#include "sync/datagram_batch.hpp"
#include "sync/engine.hpp"
#include "sync/transport.hpp"

namespace makuo {

struct NetConfig {
  uint32_t group = 0;  // host order
  uint16_t port = 5000;
  uint32_t iface = 0;  // 0 = any
  int rcvbuf = 0, sndbuf = 0;
  bool loop = false;  // see our own multicast (several daemons on one host)
};

// Datagrams refused before the engine sees them (cluster keys).
struct AuthStats {
  uint64_t plaintext = 0;    // unsealed, but we have a key
  uint64_t no_key = 0;       // sealed, but we have none
  uint64_t unknown_key = 0;  // sealed with a key we do not hold
  uint64_t bad_tag = 0;      // forged, corrupted, or another cluster's key with our key id
  uint64_t replay = 0;       // seen before, or sealed before its sender proved to be live
  uint64_t truncated = 0;
  uint64_t unproven = 0;  // its sender has not answered our challenge yet
  uint64_t total() const { return plaintext + no_key + unknown_key + bad_tag + replay + truncated; }
};

class UdpNode final : public Transport {
 public:
  // Throws std::system_error when a socket cannot be set up (start-up misconfiguration).
  UdpNode(boost::asio::io_context& io, const NetConfig& cfg);
  void attach(Engine& engine);
  // With a sealer every datagram out is sealed and every datagram in must open.
  void set_sealer(Sealer* s) { sealer_ = s; }
  const AuthStats& auth_stats() const { return auth_; }
  // Runs the engine's due work now (after a console started or cancelled something).
  void poke();
  SendStatus send(const Endpoint& to, std::span<const uint8_t> datagram) override;
  // Hands what send() batched to the kernel now (it does on its own before the io_context next
  // waits; a caller about to stop the io_context must do it).
  SendStatus flush();
  Endpoint group() const override { return {cfg_.group, cfg_.port}; }
  void prove(uint64_t node, uint64_t counter) override {
    if (sealer_) sealer_->prove(node, counter);
  }
  uint64_t tx_packets() const { return batch_.sent(); }
  uint64_t tx_errors() const { return batch_.errors() + oversize_; }
  uint64_t tx_calls() const { return batch_.calls(); }  // send system calls (GSO: many per call)
  bool tx_gso() const { return batch_.gso(); }
  int rcvbuf() const;
  int sndbuf() const;

 private:
  void arm_read(boost::asio::ip::udp::socket& s);
  void drain(boost::asio::ip::udp::socket& s, bool group);
  void run_engine();
  void arm_write();

  boost::asio::io_context& io_;
  NetConfig cfg_;
  boost::asio::ip::udp::socket mcast_, ucast_;
  boost::asio::steady_timer timer_;
  // Opens pkt where it lies (keyed); out: the plain datagram.
  bool admit(std::span<uint8_t> pkt, const Endpoint& from, std::span<const uint8_t>& out,
             Arrival& how);

  Engine* engine_ = nullptr;
  Sealer* sealer_ = nullptr;

  AuthStats auth_;
  uint64_t auth_logged_ = 0;
  TimePoint auth_log_at_{};
  DatagramBatch batch_;
  bool blocked_ = false;       // the socket was full: nothing more until it drains
  bool flush_posted_ = false;  // a flush of batch_ is queued on io_
  uint64_t oversize_ = 0;
  bool write_armed_ = false;
  TimePoint timer_at_ = TimePoint::max();
};

}  // namespace makuo
