// The tree index's on-disk records: pure functions between bytes and records. A record is
// u32 body length, the body, and the XXH3-64 of the body, so a torn or damaged tail is told
// apart from a record. Files (snapshot and log) start with kIndexMagic.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sync/wire.hpp"

namespace makuo {

constexpr std::string_view kIndexMagic = "MKIDX01\n";

// What this node knows of one path: its metadata, and of its content version the hash (when
// computed), the node where that version was written ("" = unknown: it was here before the
// index was) and the versions it replaced there, latest first.
struct IndexEntry {
  wire::Kind kind = wire::Kind::File;
  uint32_t mode = 0;  // permission bits
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::optional<wire::Hash128> hash;
  std::vector<wire::Version> ancestors;
  std::string origin;
  wire::Version version() const { return {mtime_ns, size}; }
  bool operator==(const IndexEntry&) const = default;
};

struct IndexRecord {
  enum class Op : uint8_t { Put = 1, EraseTree = 2, Stamp = 3 };
  Op op = Op::Put;
  std::string path;      // Put, EraseTree
  IndexEntry entry;      // Put
  int64_t stamp_ns = 0;  // Stamp: when the index was last written
  bool operator==(const IndexRecord&) const = default;
};

void encode_index_record(std::vector<uint8_t>& out, const IndexRecord& r);

enum class IndexDecode { Ok, Truncated, Corrupt };
// Decodes the record at the start of in; used = its encoded size when Ok.
IndexDecode decode_index_record(std::span<const uint8_t> in, IndexRecord& r, size_t& used);

}  // namespace makuo
