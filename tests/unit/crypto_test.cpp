#include "sync/crypto.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace makuo {
namespace {

ClusterKey key(uint8_t fill) {
  std::array<uint8_t, 32> raw;
  raw.fill(fill);
  return key_from_bytes(raw);
}

wire::Bytes datagram(wire::NodeId node) {
  wire::Bytes b;
  wire::encode(b, node, wire::Poll{7, 1, 2, 3, 4});
  return b;
}

TEST(Crypto, SealOpenRoundTrip) {
  Sealer a({key(1)}, 0xa), b({key(1)}, 0xb);
  wire::Bytes plain = datagram(0xa), sealed, opened;
  a.seal(plain, sealed);
  EXPECT_EQ(sealed.size(), plain.size() + kSealOverhead);
  EXPECT_TRUE(Sealer::is_sealed(sealed));
  ASSERT_EQ(b.open(sealed, opened), Sealer::Result::Ok);
  EXPECT_EQ(opened, plain);
}

TEST(Crypto, EveryFlippedBitIsRefused) {
  Sealer a({key(1)}, 0xa), b({key(1)}, 0xb);
  wire::Bytes sealed, opened;
  a.seal(datagram(0xa), sealed);
  for (size_t i = 0; i < sealed.size() * 8; ++i) {
    wire::Bytes t = sealed;
    t[i / 8] ^= uint8_t(1 << (i % 8));
    EXPECT_NE(b.open(t, opened), Sealer::Result::Ok) << "bit " << i;
  }
  EXPECT_EQ(b.open(sealed, opened), Sealer::Result::Ok);  // the original still opens
}

TEST(Crypto, ReplaysAndOtherKeysAreRefused) {
  Sealer a({key(1)}, 0xa), b({key(1)}, 0xb), other({key(2)}, 0xc);
  wire::Bytes s1, s2, opened;
  a.seal(datagram(0xa), s1);
  a.seal(datagram(0xa), s2);
  ASSERT_EQ(b.open(s2, opened), Sealer::Result::Ok);
  EXPECT_EQ(b.open(s1, opened), Sealer::Result::Ok);  // out of order, inside the window
  EXPECT_EQ(b.open(s1, opened), Sealer::Result::Replay);
  EXPECT_EQ(b.open(s2, opened), Sealer::Result::Replay);
  EXPECT_EQ(other.open(s1, opened), Sealer::Result::UnknownKey);
  EXPECT_EQ(b.open(datagram(0xa), opened), Sealer::Result::NotSealed);
  wire::Bytes shortp(s1.begin(), s1.begin() + 20);
  EXPECT_EQ(b.open(shortp, opened), Sealer::Result::Truncated);
}

TEST(Crypto, WindowSlidesAndForgetsTheVeryOld) {
  Sealer a({key(1)}, 0xa), b({key(1)}, 0xb);
  std::vector<wire::Bytes> pkts(3000);
  for (auto& p : pkts) a.seal(datagram(0xa), p);
  wire::Bytes opened;
  for (size_t i = 0; i < pkts.size(); i += 2)
    ASSERT_EQ(b.open(pkts[i], opened), Sealer::Result::Ok);
  EXPECT_EQ(b.open(pkts[2999], opened), Sealer::Result::Ok);  // odd, recent: never seen
  EXPECT_EQ(b.open(pkts[2997], opened), Sealer::Result::Ok);
  EXPECT_EQ(b.open(pkts[2998], opened), Sealer::Result::Replay);
  EXPECT_EQ(b.open(pkts[1], opened), Sealer::Result::Replay);  // older than the window
}

TEST(Crypto, RotationOpensWithEitherKey) {
  Sealer old_node({key(1)}, 0xa), new_node({key(2), key(1)}, 0xb), recv({key(2), key(1)}, 0xc);
  wire::Bytes s, opened;
  old_node.seal(datagram(0xa), s);
  EXPECT_EQ(recv.open(s, opened), Sealer::Result::Ok);
  new_node.seal(datagram(0xb), s);
  EXPECT_EQ(recv.open(s, opened), Sealer::Result::Ok);
  EXPECT_EQ(old_node.open(s, opened), Sealer::Result::UnknownKey);
}

TEST(Crypto, KeyFilesMustBePrivate) {
  auto dir = std::filesystem::temp_directory_path() / ("makuo-key-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto f = (dir / "k").string();
  std::ofstream(f) << "correct horse battery staple\n";
  chmod(f.c_str(), 0644);
  EXPECT_THROW(load_key_file(f), std::runtime_error);
  chmod(f.c_str(), 0600);
  ClusterKey a = load_key_file(f), b = load_key_file(f);
  EXPECT_EQ(a.key, b.key);  // a passphrase gives every node the same key
  std::ofstream(f) << "short\n";
  EXPECT_THROW(load_key_file(f), std::runtime_error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace makuo
