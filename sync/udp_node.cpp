#include "sync/udp_node.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <system_error>

namespace makuo {
namespace asio = boost::asio;
using asio::ip::udp;

namespace {

void check(int rc, const char* what) {
  if (rc != 0) throw std::system_error(errno, std::generic_category(), what);
}

void set_bufs(int fd, int rcv, int snd) {
  if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
    check(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv), "SO_RCVBUF");
  if (snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) != 0)
    check(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd), "SO_SNDBUF");
}

}  // namespace

UdpNode::UdpNode(asio::io_context& io, const NetConfig& cfg)
    : io_(io), cfg_(cfg), mcast_(io), ucast_(io), timer_(io) {
  mcast_.open(udp::v4());
  mcast_.set_option(asio::socket_base::reuse_address(true));
  mcast_.bind(udp::endpoint(asio::ip::address_v4(cfg.group), cfg.port));
  int fd = mcast_.native_handle();
  ip_mreqn mr{};
  mr.imr_multiaddr.s_addr = htonl(cfg.group);
  mr.imr_address.s_addr = htonl(cfg.iface);
  check(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr), "IP_ADD_MEMBERSHIP");
  int zero = 0;
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
  // Receivers need room for bursts: a 4 MiB default unless -R says otherwise.
  set_bufs(fd, cfg.rcvbuf > 0 ? cfg.rcvbuf : 4 << 20, 0);
  mcast_.non_blocking(true);

  ucast_.open(udp::v4());
  ucast_.bind(udp::endpoint(asio::ip::address_v4(cfg.iface), 0));
  int ufd = ucast_.native_handle();
  in_addr ifa{htonl(cfg.iface)};
  check(setsockopt(ufd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa), "IP_MULTICAST_IF");
  int ttl = 1, loop = cfg.loop ? 1 : 0;
  check(setsockopt(ufd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl), "IP_MULTICAST_TTL");
  check(setsockopt(ufd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop), "IP_MULTICAST_LOOP");
  set_bufs(ufd, cfg.rcvbuf > 0 ? cfg.rcvbuf : 4 << 20, cfg.sndbuf);
  ucast_.non_blocking(true);
}

int UdpNode::rcvbuf() const {
  int v = 0;
  socklen_t l = sizeof v;
  getsockopt(const_cast<udp::socket&>(mcast_).native_handle(), SOL_SOCKET, SO_RCVBUF, &v, &l);
  return v / 2;
}

int UdpNode::sndbuf() const {
  int v = 0;
  socklen_t l = sizeof v;
  getsockopt(const_cast<udp::socket&>(ucast_).native_handle(), SOL_SOCKET, SO_SNDBUF, &v, &l);
  return v / 2;
}

void UdpNode::attach(Engine& engine) {
  engine_ = &engine;
  engine_->set_wake([this] { poke(); });
  engine_->start(Clock::now());
  arm_read(mcast_);
  arm_read(ucast_);
  run_engine();
}

void UdpNode::poke() {
  asio::post(io_, [this] { run_engine(); });
}

SendStatus UdpNode::send(const Endpoint& to, std::span<const uint8_t> datagram) {
  if (blocked_) return SendStatus::WouldBlock;
  size_t size = datagram.size() + (sealer_ ? kSealOverhead : 0);
  if (!batch_.fits(to, size) && flush() == SendStatus::WouldBlock) return SendStatus::WouldBlock;
  if (!batch_.fits(to, size)) {  // larger than any datagram can be
    ++oversize_;
    return SendStatus::Error;
  }
  if (sealer_)
    sealer_->seal(datagram, batch_.add_space(to, size));  // sealed straight into the batch
  else
    batch_.add(to, datagram);
  // Whoever called us, the batch leaves before the io_context waits again.
  if (!flush_posted_) {
    flush_posted_ = true;
    asio::post(io_, [this] {
      flush_posted_ = false;
      flush();
    });
  }
  return SendStatus::Ok;
}

SendStatus UdpNode::flush() {
  if (batch_.empty()) return SendStatus::Ok;
  SendStatus s = batch_.flush(ucast_.native_handle());
  if (s == SendStatus::WouldBlock) {
    blocked_ = true;
    arm_write();
  }
  return s;
}

void UdpNode::arm_write() {
  if (write_armed_) return;
  write_armed_ = true;
  ucast_.async_wait(udp::socket::wait_write, [this](const boost::system::error_code& ec) {
    write_armed_ = false;
    if (ec) return;
    blocked_ = false;
    if (flush() == SendStatus::Ok) run_engine();
  });
}

void UdpNode::arm_read(udp::socket& s) {
  s.async_wait(udp::socket::wait_read, [this, &s](const boost::system::error_code& ec) {
    if (ec) return;
    drain(s, &s == &mcast_);
    run_engine();
    arm_read(s);
  });
}

void UdpNode::drain(udp::socket& s, bool group) {
  constexpr int kBatch = 64;
  static thread_local std::vector<uint8_t> bufs(size_t(kBatch) * 65536);
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_in from[kBatch];
  // Bounded so that a flood cannot starve timers and consoles.
  for (int round = 0; round < 16; ++round) {
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {bufs.data() + size_t(i) * 65536, 65536};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(s.native_handle(), msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    TimePoint now = Clock::now();
    for (int i = 0; i < n; ++i) {
      Endpoint ep{ntohl(from[i].sin_addr.s_addr), ntohs(from[i].sin_port)};
      std::span<uint8_t> pkt{bufs.data() + size_t(i) * 65536, msgs[i].msg_len};
      std::span<const uint8_t> plain;
      Arrival how;
      how.group = group;
      if (admit(pkt, ep, plain, how)) engine_->on_packet(plain, ep, now, how);
    }
    if (n < kBatch) return;
  }
}

bool UdpNode::admit(std::span<uint8_t> pkt, const Endpoint& from, std::span<const uint8_t>& out,
                    Arrival& how) {
  Sealer::Result r;
  if (!sealer_) {
    out = pkt;
    if (!Sealer::is_sealed(pkt)) return true;  // the engine checks everything else
    ++auth_.no_key;
    r = Sealer::Result::UnknownKey;
  } else {
    Sealer::Opened info;
    r = sealer_->open(pkt, out, &info);
    switch (r) {
      case Sealer::Result::Ok: {
        how.proven = info.proven;
        how.counter = info.counter;
        auto t = wire::Type(out[5]);
        if (!info.proven && t != wire::Type::Challenge && t != wire::Type::Response)
          ++auth_.unproven;  // the engine drops it, and challenges its sender
        return true;
      }
      case Sealer::Result::NotSealed:
        ++auth_.plaintext;
        break;
      case Sealer::Result::Truncated:
        ++auth_.truncated;
        break;
      case Sealer::Result::UnknownKey:
        ++auth_.unknown_key;
        break;
      case Sealer::Result::BadTag:
        ++auth_.bad_tag;
        break;
      case Sealer::Result::Replay:
        ++auth_.replay;
        break;
    }
  }
  // One line per 10 s at most, whatever a flood does.
  TimePoint now = Clock::now();
  if (now - auth_log_at_ >= 10s) {
    spdlog::warn("dropped {} datagram(s) that failed the cluster key check (last: {} from {}{})",
                 auth_.total() - auth_logged_, sealer_ ? to_string(r) : "sealed, we have no key",
                 from.str(), sealer_ ? "" : "; is -k missing here?");
    auth_logged_ = auth_.total();
    auth_log_at_ = now;
  }
  return false;
}

void UdpNode::run_engine() {
  if (!engine_) return;
  TimePoint next = engine_->on_timer(Clock::now());
  if (next != timer_at_ || next <= Clock::now()) {
    timer_at_ = next;
    timer_.expires_at(next);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      timer_at_ = TimePoint::max();
      run_engine();
    });
  }
}

}  // namespace makuo
