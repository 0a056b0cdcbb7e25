#include "sync/index_record.hpp"

#include <xxhash.h>

#include "sync/paths.hpp"

namespace makuo {
namespace {

constexpr uint8_t kHasHash = 1, kHasVersion = 8;
// Release 0.1's flags: the versions a file replaced (mtime and size each) and its writer.
constexpr uint8_t kV1HasBase = 2, kV1HasOrigin = 4;
constexpr size_t kV1MaxAncestors = 4;
constexpr uint32_t kMaxBody = 1 + 2 + wire::kMaxPath + 1 + 1 + 3 * 4 + 8 + 8 + 16 + 1 + 255 + 1 +
                              16 * VersionVector::kMaxDots;

void put(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

struct Cursor {
  std::span<const uint8_t> in;
  size_t pos = 0;
  bool ok = true;
  uint64_t get(int bytes) {
    if (in.size() - pos < size_t(bytes)) {
      ok = false;
      pos = in.size();
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(in[pos + size_t(i)]) << (8 * i);
    pos += size_t(bytes);
    return v;
  }
  std::string str(size_t n) {
    if (in.size() - pos < n) {
      ok = false;
      pos = in.size();
      return {};
    }
    std::string s(reinterpret_cast<const char*>(in.data() + pos), n);
    pos += n;
    return s;
  }
};

}  // namespace

void encode_index_record(std::vector<uint8_t>& out, const IndexRecord& r) {
  std::vector<uint8_t> b;
  put(b, uint8_t(r.op), 1);
  if (r.op == IndexRecord::Op::Stamp) {
    put(b, uint64_t(r.stamp_ns), 8);
  } else {
    put(b, r.path.size(), 2);
    b.insert(b.end(), r.path.begin(), r.path.end());
  }
  if (r.op == IndexRecord::Op::Put) {
    const IndexEntry& e = r.entry;
    bool versioned = !e.version.vv.empty() && !e.version.origin.empty();
    put(b, uint8_t(e.kind), 1);
    put(b, (e.hash ? kHasHash : 0) | (versioned ? kHasVersion : 0), 1);
    put(b, e.mode, 4);
    put(b, e.uid, 4);
    put(b, e.gid, 4);
    put(b, e.size, 8);
    put(b, uint64_t(e.mtime_ns), 8);
    if (e.hash) b.insert(b.end(), e.hash->begin(), e.hash->end());
    if (versioned) {
      size_t olen = std::min<size_t>(e.version.origin.size(), 255);
      put(b, olen, 1);
      b.insert(b.end(), e.version.origin.begin(), e.version.origin.begin() + long(olen));
      size_t n = std::min(e.version.vv.size(), VersionVector::kMaxDots);
      put(b, n, 1);
      for (size_t i = 0; i < n; ++i) {
        put(b, e.version.vv.dots()[i].node, 8);
        put(b, e.version.vv.dots()[i].counter, 8);
      }
    }
  }
  put(out, b.size(), 4);
  out.insert(out.end(), b.begin(), b.end());
  put(out, XXH3_64bits(b.data(), b.size()), 8);
}

IndexDecode decode_index_record(std::span<const uint8_t> in, IndexRecord& r, size_t& used,
                                bool v1) {
  Cursor c{in};
  uint64_t len = c.get(4);
  if (!c.ok) return IndexDecode::Truncated;
  if (len == 0 || len > kMaxBody) return IndexDecode::Corrupt;
  if (in.size() - c.pos < len + 8) return IndexDecode::Truncated;
  std::span<const uint8_t> body = in.subspan(4, len);
  Cursor sum{in.subspan(4 + len, 8)};
  if (sum.get(8) != XXH3_64bits(body.data(), body.size())) return IndexDecode::Corrupt;
  Cursor b{body};
  r = IndexRecord{};
  uint8_t op = uint8_t(b.get(1));
  if (op < 1 || op > (v1 ? 3 : 4)) return IndexDecode::Corrupt;
  r.op = IndexRecord::Op(op);
  if (r.op == IndexRecord::Op::Stamp) {
    r.stamp_ns = int64_t(b.get(8));
  } else {
    r.path = b.str(size_t(b.get(2)));
    if (!valid_relpath(r.path)) return IndexDecode::Corrupt;
  }
  if (r.op == IndexRecord::Op::Put) {
    IndexEntry& e = r.entry;
    uint8_t k = uint8_t(b.get(1));
    if (k < uint8_t(wire::Kind::File) || k > uint8_t(wire::Kind::Absent) ||
        (v1 && k == uint8_t(wire::Kind::Absent)))
      return IndexDecode::Corrupt;
    e.kind = wire::Kind(k);
    uint8_t f = uint8_t(b.get(1));
    uint8_t known = v1 ? kHasHash | kV1HasBase | kV1HasOrigin : kHasHash | kHasVersion;
    if (f & ~known) return IndexDecode::Corrupt;
    e.mode = uint32_t(b.get(4));
    e.uid = uint32_t(b.get(4));
    e.gid = uint32_t(b.get(4));
    e.size = b.get(8);
    e.mtime_ns = int64_t(b.get(8));
    if (f & kHasHash) {
      wire::Hash128 h{};
      for (auto& x : h) x = uint8_t(b.get(1));
      e.hash = h;
    }
    if (v1) {
      if (f & kV1HasBase) {
        size_t n = size_t(b.get(1));
        if (n == 0 || n > kV1MaxAncestors) return IndexDecode::Corrupt;
        b.str(16 * n);
      }
      if ((f & kV1HasOrigin) && b.str(size_t(b.get(1))).empty()) return IndexDecode::Corrupt;
    } else if (f & kHasVersion) {
      e.version.origin = b.str(size_t(b.get(1)));
      size_t n = size_t(b.get(1));
      if (e.version.origin.empty() || n == 0 || n > VersionVector::kMaxDots)
        return IndexDecode::Corrupt;
      std::vector<Dot> dots(n);
      for (size_t i = 0; i < n; ++i) {
        dots[i].node = b.get(8);
        dots[i].counter = b.get(8);
        if (dots[i].counter == 0 || (i > 0 && dots[i].node <= dots[i - 1].node))
          return IndexDecode::Corrupt;
      }
      e.version.vv = VersionVector(std::move(dots));
      if (e.version.vv.get(node_key(e.version.origin)) == 0) return IndexDecode::Corrupt;
    }
    if (e.mode > 07777) return IndexDecode::Corrupt;
  }
  if (!b.ok || b.pos != body.size()) return IndexDecode::Corrupt;
  used = 4 + len + 8;
  return IndexDecode::Ok;
}

}  // namespace makuo
