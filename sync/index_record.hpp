// The tree index's on-disk records: pure functions between bytes and records. A record is
// u32 body length, the body, and the XXH3-64 of the body, so a torn or damaged tail is told
// apart from a record. Files (snapshot and log) start with kIndexMagic; files of release 0.1
// (kIndexMagicV1) are still read, once, and their entries get no version (upgrade_v1).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sync/wire.hpp"

namespace makuo {

constexpr std::string_view kIndexMagic = "MKIDX02\n";
constexpr std::string_view kIndexMagicV1 = "MKIDX01\n";

// What this node knows of one path: the state it recorded (its metadata, and the content hash
// when computed) and the version that state is. kind Absent is a tombstone: the path was
// deleted, mtime_ns is when this node learnt it (tombstones expire), version is the deletion's.
struct IndexEntry {
  wire::Kind kind = wire::Kind::File;
  uint32_t mode = 0;  // permission bits
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::optional<wire::Hash128> hash;
  PathVersion version;
  bool operator==(const IndexEntry&) const = default;
};

struct IndexRecord {
  // Put of an Absent entry is a tombstone; Erase forgets one path (live or buried), EraseTree
  // the path and everything below it.
  enum class Op : uint8_t { Put = 1, EraseTree = 2, Stamp = 3, Erase = 4 };
  Op op = Op::Put;
  std::string path;      // Put, EraseTree, Erase
  IndexEntry entry;      // Put
  int64_t stamp_ns = 0;  // Stamp: when the index was last written
  bool operator==(const IndexRecord&) const = default;
};

void encode_index_record(std::vector<uint8_t>& out, const IndexRecord& r);

enum class IndexDecode { Ok, Truncated, Corrupt };
// Decodes the record at the start of in; used = its encoded size when Ok. v1: a record of a
// release 0.1 file (its origin and ancestors are read and dropped).
IndexDecode decode_index_record(std::span<const uint8_t> in, IndexRecord& r, size_t& used,
                                bool v1 = false);

}  // namespace makuo
