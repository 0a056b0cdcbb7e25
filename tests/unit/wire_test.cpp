#include "sync/wire.hpp"

#include <gtest/gtest.h>

#include <random>

namespace makuo::wire {
namespace {

std::span<const uint8_t> body(const Bytes& b) {
  return std::span(b).subspan(kHeaderSize);
}

Header head(const Bytes& b) {
  Header h;
  EXPECT_EQ(decode_header(b, h), Error::Ok);
  return h;
}

Manifest sample_manifest() {
  Manifest m;
  m.sid = 42;
  m.flags = kDsync | kRecursive;
  m.block_size = 1372;
  m.total = 3;
  Entry f;
  f.kind = Kind::File;
  f.mode = 0644;
  f.uid = 1000;
  f.gid = 33;
  f.user = "alice";
  f.group = "www-data";
  f.size = 1ull << 40;
  f.mtime_ns = 1700000000123456789;
  f.path = "dir/file name";
  f.hash = Hash128{1, 2, 3};
  f.from = "old/file name";
  f.version.origin = "web2";
  f.version.vv = VersionVector({{node_key("web2"), 1600000000000000000}, {node_key("web1"), 5}});
  Entry l;
  l.kind = Kind::Symlink;
  l.mode = 0777;
  l.path = "link";
  l.link = "../target";
  Entry d;
  d.kind = Kind::CharDev;
  d.mode = 0600;
  d.rdev = 0x0501;
  d.path = "dev";
  m.entries = {f, l, d};
  m.root = "dir";
  m.excludes = {"*.log", "cache/"};
  m.deletion = bump({}, "web2", 1700000000000000000);
  return m;
}

TEST(Wire, ManifestRoundTrips) {
  Manifest m = sample_manifest();
  Bytes b;
  encode(b, 0x1122334455667788, m);
  Header h = head(b);
  EXPECT_EQ(h.type, Type::Manifest);
  EXPECT_EQ(h.node, 0x1122334455667788u);
  Manifest r;
  ASSERT_EQ(decode(body(b), r), Error::Ok);
  EXPECT_EQ(r.entries, m.entries);
  EXPECT_EQ(r.root, "dir");
  EXPECT_EQ(r.excludes, m.excludes);
  EXPECT_EQ(r.deletion, m.deletion);
  EXPECT_EQ(r.total, 3u);
}

TEST(Wire, RenameSourceOnlyOnFilesAndDirs) {
  Manifest m = sample_manifest();
  m.entries[1].from = "x";  // a symlink: the field is not part of its encoding
  m.flags = 0;
  Bytes b;
  encode(b, 1, m);
  Manifest r;
  ASSERT_EQ(decode(body(b), r), Error::Ok);
  EXPECT_EQ(r.entries[0].from, "old/file name");
  EXPECT_EQ(r.entries[1].from, "");
  EXPECT_EQ(b.size(), kManifestOverhead + encoded_size(m.entries[0]) + encoded_size(m.entries[1]) +
                          encoded_size(m.entries[2]));
}

TEST(Wire, VersionsTravelOnEveryKindAndHaveOneEncoding) {
  Manifest m = sample_manifest();
  m.flags = 0;
  Entry dir, gone;
  dir.kind = Kind::Dir;
  dir.path = "d";
  dir.version = bump({}, "web1", 7);
  gone.kind = Kind::Absent;
  gone.path = "gone";
  gone.version = bump(dir.version, "web3", 9);
  m.entries.push_back(dir);
  m.entries.push_back(gone);
  m.total = 5;
  Bytes b;
  encode(b, 1, m);
  Manifest r;
  ASSERT_EQ(decode(body(b), r), Error::Ok);
  EXPECT_EQ(r.entries, m.entries);
  size_t total = kManifestOverhead;
  for (auto& e : m.entries) total += encoded_size(e);
  EXPECT_EQ(b.size(), total);
  // A vector whose origin has no counter in it, or whose nodes are out of order, is refused.
  auto refused = [&](auto mutate) {
    Bytes x = b;
    mutate(x);
    Manifest y;
    return decode(body(x), y) != Error::Ok;
  };
  // The last entry ends with: origin "web3", 2 dots of 16 bytes each.
  size_t dots = b.size() - 32, count = dots - 1, origin = count - 4;
  EXPECT_TRUE(refused([&](Bytes& x) { x[origin] = 'X'; }));  // another origin
  EXPECT_TRUE(refused([&](Bytes& x) { x[count] = 0; }));     // no dots
  EXPECT_TRUE(refused([&](Bytes& x) { x[count] = 33; }));    // too many
  EXPECT_TRUE(refused([&](Bytes& x) {
    std::swap_ranges(x.begin() + long(dots), x.begin() + long(dots) + 16,
                     x.begin() + long(dots) + 16);
  }));                                                                          // unsorted
  EXPECT_TRUE(refused([&](Bytes& x) { std::fill(x.end() - 8, x.end(), 0); }));  // a zero counter
}

TEST(Wire, EveryMessageRoundTrips) {
  Bytes b;
  encode(b, 1, Type::Hello,
         Announce{"web1", "0.1.0", kAnnounceReadOnly, 1700000000123456789, 1700000000123456790});
  Announce a;
  ASSERT_EQ(decode(body(b), a), Error::Ok);
  EXPECT_EQ(a.name, "web1");
  EXPECT_EQ(a.flags, kAnnounceReadOnly);
  EXPECT_EQ(a.wall_ns, 1700000000123456789);
  EXPECT_EQ(a.clock, 1700000000123456790u);

  b.clear();
  encode(b, 1, Report{7, {{1, Code::Need, 0}, {9, Code::Failed, 13}}});
  Report rep;
  ASSERT_EQ(decode(body(b), rep), Error::Ok);
  EXPECT_EQ(rep.items.size(), 2u);
  EXPECT_EQ(rep.items[1], (ReportItem{9, Code::Failed, 13}));

  b.clear();
  std::vector<uint8_t> payload(1372, 0xab);
  Data d{7, 3, 1372 * 5, true, Hash128{9}, payload};
  encode(b, 1, d);
  Data dr;
  ASSERT_EQ(decode(body(b), dr), Error::Ok);
  EXPECT_EQ(dr.offset, 1372u * 5);
  EXPECT_TRUE(dr.last);
  EXPECT_EQ(dr.hash[0], 9);
  EXPECT_EQ(dr.payload.size(), 1372u);
  EXPECT_LE(b.size(), 1472u);  // fits a 1500-byte MTU with IP and UDP headers

  b.clear();
  encode(b, 1, Data{7, 3, 1372 * 5, false, {}, payload, 0b1001});
  ASSERT_EQ(decode(body(b), dr), Error::Ok);
  EXPECT_EQ(dr.coded, 0b1001u);
  EXPECT_FALSE(dr.last);
  EXPECT_EQ(dr.payload.size(), 1372u);
  EXPECT_LE(b.size(), 1472u);
  b.clear();
  encode(b, 1, Data{7, 3, 0, false, {}, payload, 0b10});  // the base block must be in it
  EXPECT_EQ(decode(body(b), dr), Error::BadValue);

  b.clear();
  encode(b, 1, Nack{7, 4, {{3, {{0, 2}, {10, 1}}}}});
  Nack n;
  ASSERT_EQ(decode(body(b), n), Error::Ok);
  EXPECT_EQ(n.files[0].ranges[1], (BlockRange{10, 1}));

  b.clear();
  encode(b, 1, Poll{7, 2, 100, 1372 * 3, 5});
  Poll p;
  ASSERT_EQ(decode(body(b), p), Error::Ok);
  EXPECT_EQ(p.sent_upto, 100u);
  EXPECT_EQ(p.sent_offset, 1372u * 3);
  EXPECT_EQ(p.lowest_open, 5u);

  b.clear();
  encode(b, 1, DeleteReport{7, 1, true, {{0, "a"}, {13, "b c"}}});
  DeleteReport dr2;
  ASSERT_EQ(decode(body(b), dr2), Error::Ok);
  EXPECT_TRUE(dr2.final);
  EXPECT_EQ(dr2.items[1], (DeleteItem{13, "b c"}));
}

TEST(Wire, RejectsForeignAndTruncatedDatagrams) {
  Header h;
  std::vector<uint8_t> makuosan(42, 0);
  makuosan[0] = 7;  // makuosan 1.3.x protocol version
  EXPECT_EQ(decode_header(makuosan, h), Error::BadMagic);
  EXPECT_EQ(decode_header(std::vector<uint8_t>{'M', 'K'}, h), Error::Truncated);
  Bytes b;
  encode(b, 1, sample_manifest());
  for (size_t len = kHeaderSize; len < b.size(); ++len) {
    Manifest m;
    EXPECT_NE(decode(std::span(b).subspan(kHeaderSize, len - kHeaderSize), m), Error::Ok) << len;
  }
  b[4] = 1;  // release 0.1's protocol, and a future one
  EXPECT_EQ(decode_header(b, h), Error::BadVersion);
  b[4] = kVersion + 1;
  EXPECT_EQ(decode_header(b, h), Error::BadVersion);
}

TEST(Wire, ManifestsClaimingHugeSessionsAreRefused) {
  Manifest m = sample_manifest();
  m.flags = 0;
  m.total = kMaxEntries + 1;
  Bytes b;
  encode(b, 1, m);
  Manifest r;
  EXPECT_EQ(decode(body(b), r), Error::BadValue);
}

TEST(Wire, RandomBytesNeverCrashTheDecoders) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> buf(rng() % 300);
    for (auto& c : buf) c = uint8_t(rng());
    Manifest m;
    Report r;
    Data d;
    Nack n;
    DeleteReport dr;
    Announce a;
    (void)decode(buf, m);
    (void)decode(buf, r);
    (void)decode(buf, d);
    (void)decode(buf, n);
    (void)decode(buf, dr);
    (void)decode(buf, a);
  }
}

}  // namespace
}  // namespace makuo::wire
