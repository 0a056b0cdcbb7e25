// What a push costs its receiver is what arrived of it, not what its sender claims, and all
// pushes together stay within the daemon's budget (MemoryBudget): a flood over it is answered
// ENOMEM, entry by entry, and what was held is given back when the push ends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "lone_engine.hpp"
#include "sync/engine.hpp"

namespace makuo::test {
namespace {

constexpr wire::NodeId kPeer = 0x5e;
const Endpoint kPeerAt{0x0a000005, 40000};

wire::Entry file(std::string path, uint64_t size) {
  wire::Entry e;
  e.kind = wire::Kind::File;
  e.mode = 0644;
  e.size = size;
  e.path = std::move(path);
  e.version = {VersionVector({{node_key("peer"), 1}}), "peer"};
  return e;
}

class RecvMemory : public LoneEngine {
 protected:
  void start(size_t budget) {
    open_engine("recvmem", budget);
    wire::Bytes b;
    wire::encode(b, kPeer, wire::Type::Heartbeat, wire::Announce{"peer", "test"});
    deliver(b);
  }
  void deliver(const wire::Bytes& b) {
    engine_->on_packet(b, kPeerAt, now_);
    engine_->on_timer(now_);
  }
  void manifest(uint32_t total, uint32_t first, std::vector<wire::Entry> entries,
                uint16_t block = 1372) {
    wire::Manifest m;
    m.sid = 9;
    m.block_size = block;
    m.total = total;
    m.first = first;
    m.entries = std::move(entries);
    wire::Bytes b;
    wire::encode(b, kPeer, m);
    deliver(b);
  }
  size_t used() const { return engine_->recv_memory().used(); }
};

TEST_F(RecvMemory, ClaimingFourMillionEntriesCostsWhatArrived) {
  start(size_t(256) << 20);
  manifest(wire::kMaxEntries, 0, {file("a", 10)});
  manifest(wire::kMaxEntries, wire::kMaxEntries - 1, {file("z", 10)});
  EXPECT_LT(used(), 16u << 10);  // two entries and their pages; claimed, it was ~1 GB
}

TEST_F(RecvMemory, AHugeFileCostsTheBlocksThatArrived) {
  start(size_t(256) << 20);
  struct statvfs vs;
  ASSERT_EQ(statvfs(base_.c_str(), &vs), 0);
  // As large as the disk takes (a larger one is refused at once), in the smallest blocks.
  uint64_t size = uint64_t(vs.f_bavail) * vs.f_frsize / 2;
  ASSERT_GT(size, 1u << 20);
  manifest(1, 0, {file("huge", size)}, wire::kMinBlock);
  std::vector<uint8_t> block(wire::kMinBlock, 'x');
  wire::Data d;
  d.sid = 9;
  d.offset = (size / wire::kMinBlock - 2) * wire::kMinBlock;  // a block near its end
  d.payload = block;
  wire::Bytes b;
  wire::encode(b, kPeer, d);
  deliver(b);
  // A bitmap of every block would be size / 256 / 8 bytes (megabytes); one page of it came.
  EXPECT_LT(used(), 200u << 10);
}

TEST_F(RecvMemory, AFloodOverTheBudgetIsAnsweredEnomemAndGivenBackAtTheEnd) {
  start(1 << 20);
  const uint32_t n = 20000;
  for (uint32_t first = 0; first < n; first += 500) {
    std::vector<wire::Entry> v;
    for (uint32_t i = first; i < first + 500; ++i)
      v.push_back(file("d/" + std::string(200, 'p') + std::to_string(i), 1));
    manifest(n, first, std::move(v));
    EXPECT_LE(used(), size_t(1) << 20);
  }
  size_t refused = 0, needed = 0;
  std::vector<wire::ReportItem> reports;
  for (auto& rep : net_.all<wire::Report>(wire::Type::Report))
    reports.insert(reports.end(), rep.items.begin(), rep.items.end());
  for (auto& r : reports) {
    refused += r.code == wire::Code::Failed && r.err == ENOMEM;
    needed += r.code == wire::Code::Need;
  }
  EXPECT_GT(needed, 0u);
  EXPECT_GT(refused, n / 2);
  EXPECT_EQ(needed + refused, n);
  EXPECT_EQ(engine_->recv_stats().refused_memory, refused);
  wire::Bytes b;
  wire::encode(b, kPeer, wire::End{9, true});
  deliver(b);
  now_ += std::chrono::seconds(1);
  engine_->on_timer(now_);
  EXPECT_EQ(used(), 0u);
}

TEST_F(RecvMemory, EntriesAnsweredForGoodAreLetGo) {
  start(size_t(256) << 20);
  const uint32_t n = 20000;
  for (uint32_t first = 0; first < n; first += 500) {
    std::vector<wire::Entry> v;
    for (uint32_t i = first; i < first + 500; ++i) {
      wire::Entry e = file("gone/" + std::string(100, 'p') + std::to_string(i), 0);
      e.kind = wire::Kind::Absent;  // nothing here to delete: answered at once
      v.push_back(e);
    }
    manifest(n, first, std::move(v));
  }
  // What stays is each entry's answer, in pages: 16 bytes an entry, not ~400.
  EXPECT_LT(used(), n * 24);
}

}  // namespace
}  // namespace makuo::test
