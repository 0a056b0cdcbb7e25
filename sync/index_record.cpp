#include "sync/index_record.hpp"

#include <xxhash.h>

#include "sync/paths.hpp"

namespace makuo {
namespace {

constexpr uint8_t kHasHash = 1, kHasBase = 2, kHasOrigin = 4;
constexpr uint32_t kMaxBody =
    16 + 4 * 4 + 8 + 8 + 2 + wire::kMaxPath + 16 + 1 + 16 * wire::kMaxAncestors + 1 + 255 + 8;

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
    size_t olen = std::min<size_t>(e.origin.size(), 255);
    put(b, uint8_t(e.kind), 1);
    size_t na = std::min(e.ancestors.size(), wire::kMaxAncestors);
    put(b, (e.hash ? kHasHash : 0) | (na ? kHasBase : 0) | (olen ? kHasOrigin : 0), 1);
    put(b, e.mode, 4);
    put(b, e.uid, 4);
    put(b, e.gid, 4);
    put(b, e.size, 8);
    put(b, uint64_t(e.mtime_ns), 8);
    if (e.hash) b.insert(b.end(), e.hash->begin(), e.hash->end());
    if (na) {
      put(b, na, 1);
      for (size_t i = 0; i < na; ++i) {
        put(b, uint64_t(e.ancestors[i].mtime_ns), 8);
        put(b, e.ancestors[i].size, 8);
      }
    }
    if (olen) {
      put(b, olen, 1);
      b.insert(b.end(), e.origin.begin(), e.origin.begin() + long(olen));
    }
  }
  put(out, b.size(), 4);
  out.insert(out.end(), b.begin(), b.end());
  put(out, XXH3_64bits(b.data(), b.size()), 8);
}

IndexDecode decode_index_record(std::span<const uint8_t> in, IndexRecord& r, size_t& used) {
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
  if (op < 1 || op > 3) return IndexDecode::Corrupt;
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
    if (k < uint8_t(wire::Kind::File) || k >= uint8_t(wire::Kind::Absent))
      return IndexDecode::Corrupt;
    e.kind = wire::Kind(k);
    uint8_t f = uint8_t(b.get(1));
    if (f & ~(kHasHash | kHasBase | kHasOrigin)) return IndexDecode::Corrupt;
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
    if (f & kHasBase) {
      size_t n = size_t(b.get(1));
      if (n == 0 || n > wire::kMaxAncestors) return IndexDecode::Corrupt;
      for (size_t i = 0; i < n; ++i) {
        wire::Version v;
        v.mtime_ns = int64_t(b.get(8));
        v.size = b.get(8);
        e.ancestors.push_back(v);
      }
    }
    if (f & kHasOrigin) {
      e.origin = b.str(size_t(b.get(1)));
      if (e.origin.empty()) return IndexDecode::Corrupt;
    }
    if (e.mode > 07777) return IndexDecode::Corrupt;
  }
  if (!b.ok || b.pos != body.size()) return IndexDecode::Corrupt;
  used = 4 + len + 8;
  return IndexDecode::Ok;
}

}  // namespace makuo
