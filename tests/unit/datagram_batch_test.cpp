// DatagramBatch against the real kernel, over loopback only: whatever way the batch leaves
// (one GSO send, or sendmmsg), the receiver must see the same datagrams, in order, each whole.
#include "sync/datagram_batch.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace makuo {
namespace {

class Loopback : public ::testing::Test {
 protected:
  void SetUp() override {
    rx_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    tx_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(rx_, 0);
    ASSERT_GE(tx_, 0);
    int big = 4 << 20;
    setsockopt(rx_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(rx_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t l = sizeof a;
    ASSERT_EQ(getsockname(rx_, reinterpret_cast<sockaddr*>(&a), &l), 0);
    to_ = {INADDR_LOOPBACK, ntohs(a.sin_port)};
  }
  void TearDown() override {
    close(rx_);
    close(tx_);
  }
  // Every datagram waiting at the receiver, in arrival order.
  std::vector<std::string> received(size_t want) {
    std::vector<std::string> out;
    std::vector<char> buf(65536);
    while (out.size() < want) {
      pollfd p{rx_, POLLIN, 0};
      if (poll(&p, 1, 2000) != 1) break;
      ssize_t n = recv(rx_, buf.data(), buf.size(), 0);
      if (n < 0) break;
      out.emplace_back(buf.data(), size_t(n));
    }
    return out;
  }
  static std::string datagram(size_t n, int tag) {
    std::string s(n, char('a' + tag % 26));
    s[0] = char(tag);  // a reordering or a cut at the wrong place shows
    return s;
  }
  static std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
  }
  int rx_ = -1, tx_ = -1;
  Endpoint to_;
};

TEST_F(Loopback, EqualDatagramsAndAShorterLastArriveWholeAndInOrder) {
  for (bool gso : {true, false}) {
    DatagramBatch b;
    if (!gso) b.disable_gso();
    std::vector<std::string> sent;
    for (int i = 0; i < 10; ++i) sent.push_back(datagram(1400, i));
    sent.push_back(datagram(333, 10));
    for (auto& s : sent) {
      ASSERT_TRUE(b.fits(to_, s.size()));
      b.add(to_, bytes(s));
    }
    EXPECT_FALSE(b.fits(to_, 100)) << "nothing may follow the shorter last datagram";
    ASSERT_EQ(b.flush(tx_), SendStatus::Ok);
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.sent(), sent.size());
    EXPECT_EQ(b.calls(), 1u) << (gso ? "one GSO send" : "one sendmmsg");
    EXPECT_EQ(received(sent.size()), sent) << (gso ? "GSO" : "sendmmsg");
    EXPECT_EQ(b.gso(), gso) << "loopback takes GSO sends";
  }
}

TEST_F(Loopback, ABatchIsOneSizeOneDestinationAndBounded) {
  DatagramBatch b;
  std::string d = datagram(1000, 1);
  EXPECT_TRUE(b.fits(to_, DatagramBatch::kMaxBytes));
  EXPECT_FALSE(b.fits(to_, DatagramBatch::kMaxBytes + 1));
  b.add(to_, bytes(d));
  EXPECT_FALSE(b.fits(to_, 1001)) << "larger than the first";
  EXPECT_FALSE(b.fits({to_.addr, uint16_t(to_.port + 1)}, 1000)) << "another destination";
  for (size_t i = 1; i < DatagramBatch::kMaxDatagrams; ++i) {
    ASSERT_TRUE(b.fits(to_, 1000));
    b.add(to_, bytes(d));
  }
  EXPECT_FALSE(b.fits(to_, 1000)) << "at most kMaxDatagrams";
  ASSERT_EQ(b.flush(tx_), SendStatus::Ok);
  EXPECT_EQ(received(DatagramBatch::kMaxDatagrams).size(), DatagramBatch::kMaxDatagrams);

  DatagramBatch c;
  std::string big = datagram(20000, 2);
  c.add(to_, bytes(big));
  c.add(to_, bytes(big));
  c.add(to_, bytes(big));
  EXPECT_FALSE(c.fits(to_, 20000)) << "a batch stays within one IPv4 datagram";
}

TEST_F(Loopback, ASingleDatagramAndAnEmptyFlush) {
  DatagramBatch b;
  EXPECT_EQ(b.flush(tx_), SendStatus::Ok);
  EXPECT_EQ(b.calls(), 0u);
  std::string d = datagram(77, 3);
  b.add(to_, bytes(d));
  ASSERT_EQ(b.flush(tx_), SendStatus::Ok);
  EXPECT_EQ(received(1), std::vector<std::string>{d});
}

TEST_F(Loopback, ARefusedDestinationIsCountedAndKeepsGsoOn) {
  for (bool gso : {true, false}) {
    DatagramBatch b;
    if (!gso) b.disable_gso();
    // The kernel refuses port 0 (EINVAL) to GSO and single sends alike: a fault of the
    // destination, not of segmentation.
    Endpoint nowhere{INADDR_LOOPBACK, 0};
    std::string d = datagram(100, 4);
    b.add(nowhere, bytes(d));
    b.add(nowhere, bytes(d));
    ASSERT_EQ(b.flush(tx_), SendStatus::Ok);
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.errors(), 2u);
    EXPECT_EQ(b.sent(), 0u);
    EXPECT_EQ(b.gso(), gso);
    b.add(to_, bytes(d));
    b.add(to_, bytes(d));
    ASSERT_EQ(b.flush(tx_), SendStatus::Ok);
    EXPECT_EQ(received(2), (std::vector<std::string>{d, d}));
  }
}

}  // namespace
}  // namespace makuo
