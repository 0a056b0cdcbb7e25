// The makuo datagram format: pure functions between bytes and structs. Every length is checked;
// nothing here does I/O. docs/ARCHITECTURE.md says where it sits.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sync/version_vector.hpp"

namespace makuo::wire {

// makuosan 1.3.x puts its protocol version (7) in byte 0 and drops anything else; our magic
// starts with 'M' (0x4d), so each side drops the other's packets cleanly.
constexpr uint32_t kMagic = 0x4d4b4f31;  // "MKO1"
// 2: entries carry version vectors, heartbeats their sender's clocks (makuo 0.2). A daemon
// drops datagrams of another protocol version and says so (a 0.1 peer cannot be ordered).
constexpr uint8_t kVersion = 2;
constexpr size_t kHeaderSize = 16;
constexpr size_t kMaxPath = 4095;
constexpr size_t kMaxName = 255;
constexpr uint32_t kMaxEntries = 4'000'000;
// The smallest data block a push may use (--mtu 576 gives 448): a file costs its receiver
// a bit per block, and each datagram's work is paid per block.
constexpr uint16_t kMinBlock = 256;

using NodeId = uint64_t;
using Hash128 = std::array<uint8_t, 16>;
using Bytes = std::vector<uint8_t>;

enum class Type : uint8_t {
  Hello = 1,  // "I just started": members answer with a Heartbeat
  Heartbeat = 2,
  Bye = 3,
  // Keyed clusters: a sender's datagrams are taken only once it proved to be live now, by
  // answering a Challenge's random nonce (sealed: only a key holder can). See Sealer.
  Challenge = 4,
  Response = 5,
  Manifest = 16,
  Report = 17,
  Data = 18,
  Poll = 19,
  Nack = 20,
  End = 21,
  DeleteReport = 22,
  DeleteAck = 23,
};

enum class Error : uint8_t { Ok, Truncated, BadMagic, BadVersion, BadType, BadValue, Trailing };
const char* to_string(Error e);

struct Header {
  Type type{};
  NodeId node = 0;
};

struct Challenge {
  std::array<uint8_t, 16> nonce{};
};

// Announce flags
constexpr uint16_t kAnnounceReadOnly = 1;  // -r: receives nothing
constexpr uint16_t kAnnounceNoSend = 2;    // -s: sends nothing

struct Announce {
  std::string name;
  std::string version;
  uint16_t flags = 0;
  int64_t wall_ns = 0;  // the sender's wall clock when it sent this: peers compare theirs
  uint64_t clock = 0;   // the sender's hybrid clock: peers' clocks pass it
};

// The answer to a Challenge: its nonce, and who answers (as a heartbeat says it), so that the
// asker takes the answerer as a member at once.
struct Response {
  std::array<uint8_t, 16> nonce{};
  Announce who;
};

enum class Kind : uint8_t { File = 1, Dir, Symlink, HardLink, Fifo, CharDev, BlockDev, Absent };

struct Entry {
  Kind kind = Kind::File;
  uint32_t mode = 0;  // permission bits only (07777)
  uint32_t uid = 0, gid = 0;
  std::string user, group;  // owner by name; numeric ids are the fallback
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t rdev = 0;
  std::string path;  // relative to the base directory, validated on receipt
  std::string link;  // symlink target, or hard link's first path in this push
  std::string from;  // File or Dir: it was renamed from this path (a receiver holding that
                     // object with the same size and mtime renames it instead of receiving it)
  std::optional<Hash128> hash;  // check sessions; automatic pushes for files up to 64 MiB
  // File: HardLink entries later in this push name it (their link), so receivers remember it.
  bool linked = false;
  // Every push but --check: which version of the path this state is (an Absent entry: the
  // version of its deletion). Receivers judge by it, never by the mtime (receive_judge.hpp).
  PathVersion version;
  bool operator==(const Entry&) const = default;
};

// Session flags
constexpr uint16_t kDryRun = 1;
constexpr uint16_t kCheck = 2;
constexpr uint16_t kDsync = 4;
constexpr uint16_t kRecursive = 8;
// Automatic propagation of recorded changes and catch-up: a receiver takes a version that
// descends from its own and keeps its own when it descends from the incoming one; concurrent
// versions are ordered by their clocks (receive_judge.hpp). Without it a push is
// authoritative, as msync's are: the receivers take the sender's state, whatever they held.
constexpr uint16_t kAuto = 16;
// Catch-up, first phase: Dir entries carrying the digest of what is directly in them
// (dir_digest); receivers answer CheckOk (same) or CheckNg (differs) and change nothing.
constexpr uint16_t kDigest = 32;

struct Manifest {
  uint32_t sid = 0;
  uint16_t flags = 0;
  uint16_t block_size = 0;
  uint32_t total = 0;  // entries in the whole session
  uint32_t first = 0;  // index of entries[0]
  std::vector<Entry> entries;
  // dsync only, carried in the chunk with first == 0: the subtree and its excludes, and the
  // version the deletions it makes are (merged with what each receiver held).
  std::string root;
  std::vector<std::string> excludes;
  PathVersion deletion;
};

enum class Code : uint8_t {
  Unknown = 0,
  Need = 1,    // receiver lacks or differs: wants the content
  Same = 2,    // receiver already identical
  Done = 3,    // committed
  Failed = 4,  // err says why
  CheckOk = 5,
  CheckNg = 6,
  Deleted = 7,        // sync of an absent path removed it
  ReadOnly = 8,       // receiver runs with -r
  DoneOwnerKept = 9,  // committed, but the receiver is not root: the owner was not applied
  Newer = 10,         // kAuto: the receiver's version descends from the incoming one, or wins
                      // over it (concurrent); it keeps it
};
bool is_final(Code c, bool dry_run);

struct ReportItem {
  uint32_t idx = 0;
  Code code = Code::Unknown;
  uint16_t err = 0;
  bool operator==(const ReportItem&) const = default;
};
struct Report {
  uint32_t sid = 0;
  std::vector<ReportItem> items;
};

struct Data {
  uint32_t sid = 0;
  uint32_t idx = 0;
  uint64_t offset = 0;
  bool last = false;  // last block of the file: carries the whole-file hash
  Hash128 hash{};
  // coded: a coded repair when not 0: bit i set = block (offset / block size + i) is XORed into the
  // payload (bit 0 always; full blocks only, never the last). A receiver missing exactly one
  // of them rebuilds it from those it has: one datagram repairs a different loss at each.
  std::span<const uint8_t> payload;
  uint64_t coded = 0;
};

// dst ^= src, byte by byte (coded repairs); src is at least as long as dst.
inline void xor_into(std::span<uint8_t> dst, std::span<const uint8_t> src) {
  for (size_t k = 0; k < dst.size(); ++k) dst[k] ^= src[k];
}

struct Poll {
  uint32_t sid = 0;
  uint32_t seq = 0;
  uint32_t sent_upto = 0;    // every file below this index was sent once in full
  uint64_t sent_offset = 0;  // ... and file sent_upto up to this byte offset
  uint32_t lowest_open = 0;  // lowest index some target still owes a result for
};

struct BlockRange {
  uint32_t first = 0, count = 0;
  bool operator==(const BlockRange&) const = default;
};
struct NackFile {
  uint32_t idx = 0;
  std::vector<BlockRange> ranges;  // empty: "entry idx of the manifest never arrived"
  bool operator==(const NackFile&) const = default;
};
// poll_seq of a NACK sent on seeing a gap in the stream rather than in answer to a poll
constexpr uint32_t kStreamGap = UINT32_MAX;
struct Nack {
  uint32_t sid = 0;
  uint32_t poll_seq = 0;
  std::vector<NackFile> files;
};

struct End {
  uint32_t sid = 0;
  bool abort = false;
};

struct DeleteItem {
  uint16_t err = 0;
  std::string path;
  bool operator==(const DeleteItem&) const = default;
};
struct DeleteReport {
  uint32_t sid = 0;
  uint32_t chunk = 0;
  bool final = false;
  std::vector<DeleteItem> items;
};
struct DeleteAck {
  uint32_t sid = 0;
  uint32_t chunk = 0;
};

// Encoders append a whole datagram (header included) to out.
void encode(Bytes& out, NodeId node, Type t, const Announce& m);
void encode(Bytes& out, NodeId node, const Challenge& m);
void encode(Bytes& out, NodeId node, const Response& m);
void encode(Bytes& out, NodeId node, const Manifest& m);
void encode(Bytes& out, NodeId node, const Report& m);
void encode(Bytes& out, NodeId node, const Data& m);
void encode(Bytes& out, NodeId node, const Poll& m);
void encode(Bytes& out, NodeId node, const Nack& m);
void encode(Bytes& out, NodeId node, const End& m);
void encode(Bytes& out, NodeId node, const DeleteReport& m);
void encode(Bytes& out, NodeId node, const DeleteAck& m);

// Sizes used to pack batches into one datagram.
size_t encoded_size(const Entry& e);
constexpr size_t kManifestOverhead = kHeaderSize + 4 + 2 + 2 + 4 + 4 + 2;
constexpr size_t kReportItemSize = 7;
constexpr size_t kDataOverhead = kHeaderSize + 4 + 4 + 8 + 1 + 16;

Error decode_header(std::span<const uint8_t> in, Header& h);
// Body decoders take the datagram without its header.
Error decode(std::span<const uint8_t> in, Announce& m);
Error decode(std::span<const uint8_t> in, Challenge& m);
Error decode(std::span<const uint8_t> in, Response& m);
Error decode(std::span<const uint8_t> in, Manifest& m);
Error decode(std::span<const uint8_t> in, Report& m);
Error decode(std::span<const uint8_t> in, Data& m);
Error decode(std::span<const uint8_t> in, Poll& m);
Error decode(std::span<const uint8_t> in, Nack& m);
Error decode(std::span<const uint8_t> in, End& m);
Error decode(std::span<const uint8_t> in, DeleteReport& m);
Error decode(std::span<const uint8_t> in, DeleteAck& m);

}  // namespace makuo::wire
