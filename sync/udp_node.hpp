// Binds an Engine to real sockets with Boost.Asio: a multicast socket that listens on the
// group, a unicast socket that sends everything (so answers come back to it), one timer.
#pragma once
#include <boost/asio.hpp>
#include <functional>

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

class UdpNode final : public Transport {
 public:
  // Throws std::system_error when a socket cannot be set up (start-up misconfiguration).
  UdpNode(boost::asio::io_context& io, const NetConfig& cfg);
  void attach(Engine& engine);
  // Runs the engine's due work now (after a console started or cancelled something).
  void poke();
  SendStatus send(const Endpoint& to, std::span<const uint8_t> datagram) override;
  Endpoint group() const override { return {cfg_.group, cfg_.port}; }
  uint64_t tx_packets() const { return tx_packets_; }
  uint64_t tx_errors() const { return tx_errors_; }
  int rcvbuf() const;
  int sndbuf() const;

 private:
  void arm_read(boost::asio::ip::udp::socket& s);
  void drain(boost::asio::ip::udp::socket& s);
  void run_engine();
  void arm_write();

  boost::asio::io_context& io_;
  NetConfig cfg_;
  boost::asio::ip::udp::socket mcast_, ucast_;
  boost::asio::steady_timer timer_;
  Engine* engine_ = nullptr;
  bool write_armed_ = false;
  TimePoint timer_at_ = TimePoint::max();
  uint64_t tx_packets_ = 0, tx_errors_ = 0;
};

}  // namespace makuo
