// What a node takes, and from whom: pushes only from current members, membership only by the
// group, on our unicast socket only what members send; with keys, nothing from a sender until it
// answered a challenge, and nothing it sealed before that answer (a capture replayed after a
// restart).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "lone_engine.hpp"
#include "sync/crypto.hpp"
#include "sync/engine.hpp"

namespace makuo::test {
namespace {

constexpr wire::NodeId kPeer = 0x5e;
const Endpoint kPeerAt{0x0a000005, 40000};

class Admission : public LoneEngine {
 protected:
  void SetUp() override { open_engine("admit"); }
  wire::Bytes heartbeat() {
    wire::Bytes b;
    wire::encode(b, kPeer, wire::Type::Heartbeat, wire::Announce{"peer", "test"});
    return b;
  }
  // A push of one empty file, f.
  wire::Bytes push() {
    wire::Manifest m;
    m.sid = 9;
    m.block_size = 1000;
    m.total = 1;
    wire::Entry e;
    e.kind = wire::Kind::File;
    e.mode = 0644;
    e.path = "f";
    m.entries.push_back(e);
    wire::Bytes b;
    wire::encode(b, kPeer, m);
    return b;
  }
  void deliver(const wire::Bytes& b, Arrival how = {}) {
    engine_->on_packet(b, kPeerAt, now_, how);
    engine_->on_timer(now_);
  }
};

TEST_F(Admission, APushFromANonMemberIsRefused) {
  deliver(push());
  EXPECT_EQ(engine_->stats().drop_not_member, 1u);
  EXPECT_EQ(engine_->stats().sessions_received, 0u);
  deliver(heartbeat());
  deliver(push());
  EXPECT_EQ(engine_->stats().sessions_received, 1u);
}

TEST_F(Admission, MembershipComesByTheGroupAndUnicastFromMembersOnly) {
  deliver(heartbeat(), Arrival{false, true, 0});  // to our unicast socket: no way in
  EXPECT_EQ(engine_->members().size(), 0u);
  deliver(push(), Arrival{false, true, 0});
  EXPECT_EQ(engine_->stats().drop_not_member, 2u);
  deliver(heartbeat());
  ASSERT_EQ(engine_->members().size(), 1u);
  // A member's answer on our unicast socket is taken, but not from another address.
  engine_->on_packet(push(), {0x0a000099, 40000}, now_, Arrival{false, true, 0});
  EXPECT_EQ(engine_->stats().drop_not_member, 3u);
  deliver(push(), Arrival{false, true, 0});
  EXPECT_EQ(engine_->stats().sessions_received, 1u);
}

TEST_F(Admission, AnUnprovenSenderIsChallengedAndTakenOnceItAnswers) {
  deliver(heartbeat(), Arrival{true, false, 700});
  EXPECT_EQ(engine_->members().size(), 0u);
  EXPECT_EQ(engine_->stats().drop_unproven, 1u);
  const CapturedNet::Sent* ch = net_.last(wire::Type::Challenge);
  ASSERT_NE(ch, nullptr);
  EXPECT_EQ(ch->to, kPeerAt);
  wire::Challenge asked;
  ASSERT_EQ(wire::decode(std::span(ch->d).subspan(wire::kHeaderSize), asked), wire::Error::Ok);
  // Asked at most twice a second, however much arrives.
  size_t n = net_.sent.size();
  deliver(heartbeat(), Arrival{true, false, 701});
  EXPECT_EQ(net_.sent.size(), n);
  // A wrong answer proves nothing; the right one does, at its counter.
  wire::Response wrong{asked.nonce, wire::Announce{"peer", "test"}};
  wrong.nonce[0] ^= 1;
  wire::Bytes b;
  wire::encode(b, kPeer, wrong);
  deliver(b, Arrival{false, false, 702});
  EXPECT_TRUE(net_.proved.empty());
  b.clear();
  wire::encode(b, kPeer, wire::Response{asked.nonce, wire::Announce{"peer", "test"}});
  deliver(b, Arrival{false, false, 703});
  ASSERT_EQ(net_.proved.size(), 1u);
  EXPECT_EQ(net_.proved[0], (std::pair<uint64_t, uint64_t>{kPeer, 703}));
  ASSERT_NE(engine_->members().find(kPeer), nullptr);  // a member at once
  EXPECT_EQ(engine_->members().find(kPeer)->name, "peer");
  // And a challenge is answered with its nonce, whoever asks.
  b.clear();
  wire::encode(b, kPeer, asked);
  deliver(b, Arrival{false, false, 704});
  const CapturedNet::Sent* resp = net_.last(wire::Type::Response);
  ASSERT_NE(resp, nullptr);
  wire::Response answered;
  ASSERT_EQ(wire::decode(std::span(resp->d).subspan(wire::kHeaderSize), answered), wire::Error::Ok);
  EXPECT_EQ(answered.nonce, asked.nonce);
}

TEST(SealerProof, WhatASenderSealedBeforeItsAnswerIsRefused) {
  ClusterKey k = key_from_bytes(std::vector<uint8_t>(32, 7));
  Sealer tx({k}, kPeer), rx({k}, 0x77);
  wire::Bytes plain, sealed, out;
  wire::encode(plain, kPeer, wire::Type::Heartbeat, wire::Announce{"peer", "test"});
  std::vector<wire::Bytes> captured;
  for (int i = 0; i < 5; ++i) {
    tx.seal(plain, sealed);
    captured.push_back(sealed);
  }
  Sealer::Opened info;
  ASSERT_EQ(rx.open(captured[0], out, &info), Sealer::Result::Ok);
  EXPECT_FALSE(info.proven);  // authentic, but not known to be live now
  rx.prove(kPeer, 4);         // its answer came sealed with counter 4
  EXPECT_EQ(rx.open(captured[2], out, &info), Sealer::Result::Replay);
  ASSERT_EQ(rx.open(captured[4], out, &info), Sealer::Result::Ok);
  EXPECT_TRUE(info.proven);
  // A receiver that restarted knows nothing: everything is unproven until the next answer.
  Sealer restarted({k}, 0x77);
  ASSERT_EQ(restarted.open(captured[1], out, &info), Sealer::Result::Ok);
  EXPECT_FALSE(info.proven);
}

}  // namespace
}  // namespace makuo::test
