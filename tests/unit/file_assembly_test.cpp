// Block reassembly alone: a temporary file, blocks in any order, duplicates, coded repairs.
#include "sync/file_assembly.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

namespace makuo {
namespace {

constexpr uint32_t kBlock = 1000;

struct Fixture {
  explicit Fixture(uint64_t size) : content(size), fa(size, kBlock) {
    std::mt19937 rng{uint32_t(size)};
    for (auto& b : content) b = uint8_t(rng());
    char name[] = "/tmp/makuo-assembly.XXXXXX";
    int fd = mkstemp(name);
    unlink(name);
    fa.attach(Fd(fd));
  }
  std::span<const uint8_t> block(uint64_t b) const {
    return {content.data() + b * kBlock, fa.block_bytes(b)};
  }
  int add(uint64_t b, bool& fresh) {
    uint64_t w = 0;
    return fa.add(b, block(b), fresh, w);
  }
  std::vector<uint8_t> file() {
    uint64_t w = 0;
    EXPECT_EQ(fa.flush(w), 0);
    std::vector<uint8_t> out(content.size());
    EXPECT_EQ(pread(fa.fd(), out.data(), out.size(), 0), ssize_t(out.size()));
    return out;
  }
  wire::Hash128 hash() const {
    Hasher h;
    h.update(content);
    return h.digest();
  }
  std::vector<uint8_t> content;
  FileAssembly fa;
};

TEST(FileAssembly, InOrderBlocksAreWrittenAndHashedAsTheyCome) {
  Fixture f(10 * kBlock + 123);
  ASSERT_EQ(f.fa.blocks_total(), 11u);
  EXPECT_EQ(f.fa.block_bytes(10), 123u);
  for (uint64_t b = 0; b < 11; ++b) {
    bool fresh = false;
    ASSERT_EQ(f.add(b, fresh), 0);
    EXPECT_TRUE(fresh);
    EXPECT_EQ(f.fa.next_expected(), b + 1);
  }
  EXPECT_FALSE(f.fa.complete());  // the hash comes with the last block
  f.fa.set_hash(f.hash());
  EXPECT_TRUE(f.fa.complete());
  EXPECT_EQ(f.fa.hashed_upto(), f.content.size());
  EXPECT_EQ(f.fa.hasher().digest(), f.hash());
  EXPECT_EQ(f.file(), f.content);
}

TEST(FileAssembly, OutOfOrderAndDuplicateBlocksLandInPlaceOnce) {
  Fixture f(5 * kBlock);
  bool fresh = false;
  std::vector<bool> got;
  for (uint64_t b : {3, 0, 1, 3, 4, 2, 0}) {
    ASSERT_EQ(f.add(b, fresh), 0);
    got.push_back(fresh);
  }
  EXPECT_EQ(got, (std::vector<bool>{true, true, true, false, true, true, false}));
  EXPECT_TRUE(f.fa.has(2));
  EXPECT_EQ(f.fa.next_expected(), 5u);
  // Hashed as the blocks continue what is hashed: 0, 1, 2; 3 and 4 came before their turn,
  // and the session hashes them from the file.
  EXPECT_EQ(f.fa.hashed_upto(), 3 * kBlock);
  EXPECT_EQ(f.fa.next_missing(0, 5), 5u);
  EXPECT_EQ(f.file(), f.content);
}

TEST(FileAssembly, ACodedRepairRebuildsTheOneMissingBlockOfItsGroup) {
  Fixture f(8 * kBlock + 10);
  bool fresh = false;
  for (uint64_t b : {0, 1, 3}) ASSERT_EQ(f.add(b, fresh), 0);
  uint64_t w = 0;
  ASSERT_EQ(f.fa.flush(w), 0);  // rebuilt from the file as well as from the stage
  ASSERT_EQ(f.add(4, fresh), 0);
  std::vector<uint8_t> coded(kBlock, 0);
  for (uint64_t b : {0, 1, 2, 3, 4}) wire::xor_into(coded, f.block(b));
  uint64_t missing = 0;
  std::vector<uint8_t> out;
  int err = 0;
  ASSERT_EQ(f.fa.rebuild(0, 0b11111, coded, missing, out, err), FileAssembly::Rebuild::Rebuilt);
  EXPECT_EQ(missing, 2u);
  EXPECT_EQ(out, std::vector<uint8_t>(f.block(2).begin(), f.block(2).end()));
}

TEST(FileAssembly, ACodedRepairWithTwoMissingOrNoneOrTheLastBlockIsOfNoUse) {
  Fixture f(8 * kBlock + 10);
  bool fresh = false;
  ASSERT_EQ(f.add(0, fresh), 0);
  std::vector<uint8_t> coded(kBlock, 0), out;
  uint64_t missing = 0;
  int err = 0;
  EXPECT_EQ(f.fa.rebuild(0, 0b111, coded, missing, out, err), FileAssembly::Rebuild::Useless);
  EXPECT_EQ(f.fa.rebuild(0, 0b1, coded, missing, out, err), FileAssembly::Rebuild::Nothing);
  // Block 8 is the short last one: never part of a coded group.
  EXPECT_EQ(f.fa.rebuild(7, 0b11, coded, missing, out, err), FileAssembly::Rebuild::Useless);
  // A payload of the wrong size is not a repair.
  EXPECT_EQ(f.fa.rebuild(1, 0b1, std::vector<uint8_t>(10), missing, out, err),
            FileAssembly::Rebuild::Useless);
}

}  // namespace
}  // namespace makuo
