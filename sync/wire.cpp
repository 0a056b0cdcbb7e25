#include "sync/wire.hpp"

#include <cstring>

namespace makuo::wire {
namespace {

// Big-endian writer appending to a byte vector.
struct Writer {
  Bytes& out;
  void u8(uint8_t v) { out.push_back(v); }
  void u16(uint16_t v) {
    out.push_back(uint8_t(v >> 8));
    out.push_back(uint8_t(v));
  }
  void u32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
  }
  void u64(uint64_t v) {
    for (int s = 56; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
  }
  void raw(const void* p, size_t n) {
    auto b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  void str8(const std::string& s) {
    u8(uint8_t(std::min<size_t>(s.size(), 255)));
    raw(s.data(), std::min<size_t>(s.size(), 255));
  }
  void str16(const std::string& s) {
    u16(uint16_t(std::min<size_t>(s.size(), 65535)));
    raw(s.data(), std::min<size_t>(s.size(), 65535));
  }
  void header(NodeId node, Type t) {
    u32(kMagic);
    u8(kVersion);
    u8(uint8_t(t));
    u16(0);
    u64(node);
  }
};

// Bounds-checked big-endian reader: any overrun sets ok=false and yields zeros.
struct Reader {
  std::span<const uint8_t> in;
  size_t pos = 0;
  bool ok = true;
  bool need(size_t n) {
    if (!ok || in.size() - pos < n) ok = false;
    return ok;
  }
  uint8_t u8() { return need(1) ? in[pos++] : 0; }
  uint16_t u16() {
    if (!need(2)) return 0;
    uint16_t v = uint16_t(in[pos] << 8 | in[pos + 1]);
    pos += 2;
    return v;
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | in[pos++];
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | in[pos++];
    return v;
  }
  void raw(void* p, size_t n) {
    if (!need(n)) return;
    std::memcpy(p, in.data() + pos, n);
    pos += n;
  }
  std::string str(size_t n) {
    if (!need(n)) return {};
    std::string s(reinterpret_cast<const char*>(in.data() + pos), n);
    pos += n;
    return s;
  }
  std::string str8() { return str(u8()); }
  std::string str16() { return str(u16()); }
  std::span<const uint8_t> rest() {
    auto r = in.subspan(pos);
    pos = in.size();
    return r;
  }
  Error finish() const {
    if (!ok) return Error::Truncated;
    return pos == in.size() ? Error::Ok : Error::Trailing;
  }
};

constexpr uint8_t kEntryHasHash = 1;
constexpr uint8_t kEntryHasLink = 2;
constexpr uint8_t kEntryHasRdev = 4;
constexpr uint8_t kEntryHasFrom = 8;
constexpr uint8_t kEntryHasVersion = 16;
constexpr uint8_t kEntryLinked = 32;
constexpr uint8_t kEntryFlags =
    kEntryHasHash | kEntryHasLink | kEntryHasRdev | kEntryHasFrom | kEntryHasVersion | kEntryLinked;

bool has_link(Kind k) {
  return k == Kind::Symlink || k == Kind::HardLink;
}
bool has_rdev(Kind k) {
  return k == Kind::CharDev || k == Kind::BlockDev;
}
bool may_have_from(Kind k) {
  return k == Kind::File || k == Kind::Dir;
}

// A version: origin (str8), then the vector's dots (u8 count, node u64 + counter u64 each, in
// node order). An empty vector is not sent (the flag is clear).
void put_version(Writer& w, const PathVersion& v) {
  w.str8(v.origin);
  size_t n = std::min(v.vv.size(), VersionVector::kMaxDots);
  w.u8(uint8_t(n));
  for (size_t i = 0; i < n; ++i) {
    w.u64(v.vv.dots()[i].node);
    w.u64(v.vv.dots()[i].counter);
  }
}

// Exactly one encoding per version: dots in strictly increasing node order, counters above 0,
// and the origin among them.
bool get_version(Reader& r, PathVersion& v) {
  v.origin = r.str8();
  size_t n = r.u8();
  if (!r.ok || n == 0 || n > VersionVector::kMaxDots || v.origin.empty()) return false;
  std::vector<Dot> dots(n);
  for (size_t i = 0; i < n; ++i) {
    dots[i].node = r.u64();
    dots[i].counter = r.u64();
    if (dots[i].counter == 0 || (i > 0 && dots[i].node <= dots[i - 1].node)) return false;
  }
  if (!r.ok) return false;
  v.vv = VersionVector(std::move(dots));
  return v.vv.get(node_key(v.origin)) != 0;
}

bool has_version(const PathVersion& v) {
  return !v.vv.empty() && !v.origin.empty();
}

size_t version_size(const PathVersion& v) {
  return has_version(v) ? 1 + std::min<size_t>(v.origin.size(), 255) + 1 +
                              16 * std::min(v.vv.size(), VersionVector::kMaxDots)
                        : 0;
}

void put_entry(Writer& w, const Entry& e) {
  uint8_t f = (e.hash ? kEntryHasHash : 0) | (has_link(e.kind) ? kEntryHasLink : 0) |
              (has_rdev(e.kind) ? kEntryHasRdev : 0) |
              (may_have_from(e.kind) && !e.from.empty() ? kEntryHasFrom : 0) |
              (has_version(e.version) ? kEntryHasVersion : 0) |
              (e.linked && e.kind == Kind::File ? kEntryLinked : 0);
  w.u8(uint8_t(e.kind));
  w.u8(f);
  w.u32(e.mode);
  w.u32(e.uid);
  w.u32(e.gid);
  w.u64(e.size);
  w.u64(uint64_t(e.mtime_ns));
  w.str8(e.user);
  w.str8(e.group);
  w.str16(e.path);
  if (f & kEntryHasLink) w.str16(e.link);
  if (f & kEntryHasRdev) w.u64(e.rdev);
  if (f & kEntryHasFrom) w.str16(e.from);
  if (e.hash) w.raw(e.hash->data(), 16);
  if (f & kEntryHasVersion) put_version(w, e.version);
}

bool get_entry(Reader& r, Entry& e) {
  uint8_t k = r.u8();
  if (k < uint8_t(Kind::File) || k > uint8_t(Kind::Absent)) return false;
  e.kind = Kind(k);
  uint8_t f = r.u8();
  // Exactly the fields its kind has: one encoding per entry, nothing left to interpretation.
  if ((f & ~kEntryFlags) || bool(f & kEntryHasLink) != has_link(e.kind) ||
      bool(f & kEntryHasRdev) != has_rdev(e.kind) ||
      ((f & kEntryHasFrom) && !may_have_from(e.kind)) ||
      ((f & kEntryLinked) && e.kind != Kind::File))
    return false;
  e.linked = f & kEntryLinked;
  e.mode = r.u32();
  e.uid = r.u32();
  e.gid = r.u32();
  e.size = r.u64();
  e.mtime_ns = int64_t(r.u64());
  e.user = r.str8();
  e.group = r.str8();
  e.path = r.str16();
  if (f & kEntryHasLink) e.link = r.str16();
  if (f & kEntryHasRdev) e.rdev = r.u64();
  if (f & kEntryHasFrom) {
    e.from = r.str16();
    if (e.from.empty()) return false;
  }
  if (f & kEntryHasHash) {
    Hash128 h{};
    r.raw(h.data(), 16);
    e.hash = h;
  }
  if ((f & kEntryHasVersion) && !get_version(r, e.version)) return false;
  return r.ok && e.mode <= 07777;
}

}  // namespace

const char* to_string(Error e) {
  switch (e) {
    case Error::Ok:
      return "ok";
    case Error::Truncated:
      return "truncated";
    case Error::BadMagic:
      return "bad magic";
    case Error::BadVersion:
      return "bad version";
    case Error::BadType:
      return "bad type";
    case Error::BadValue:
      return "bad value";
    case Error::Trailing:
      return "trailing bytes";
  }
  return "?";
}

bool is_final(Code c, bool dry_run) {
  switch (c) {
    case Code::Unknown:
      return false;
    case Code::Need:
      return dry_run;
    default:
      return true;
  }
}

size_t encoded_size(const Entry& e) {
  return 1 + 1 + 4 + 4 + 4 + 8 + 8 + 1 + std::min<size_t>(e.user.size(), 255) + 1 +
         std::min<size_t>(e.group.size(), 255) + 2 + e.path.size() +
         (has_link(e.kind) ? 2 + e.link.size() : 0) + (has_rdev(e.kind) ? 8 : 0) +
         (may_have_from(e.kind) && !e.from.empty() ? 2 + e.from.size() : 0) + (e.hash ? 16 : 0) +
         version_size(e.version);
}

namespace {
void put_announce(Writer& w, const Announce& m) {
  w.str8(m.name);
  w.str8(m.version);
  w.u16(m.flags);
  w.u64(uint64_t(m.wall_ns));
  w.u64(m.clock);
}
Error get_announce(Reader& r, Announce& m) {
  m.name = r.str8();
  m.version = r.str8();
  m.flags = r.u16();
  m.wall_ns = int64_t(r.u64());
  m.clock = r.u64();
  if (r.ok && m.name.empty()) return Error::BadValue;
  return r.finish();
}
}  // namespace

void encode(Bytes& out, NodeId node, Type t, const Announce& m) {
  Writer w{out};
  w.header(node, t);
  put_announce(w, m);
}

void encode(Bytes& out, NodeId node, const Challenge& m) {
  Writer w{out};
  w.header(node, Type::Challenge);
  w.raw(m.nonce.data(), m.nonce.size());
}

void encode(Bytes& out, NodeId node, const Response& m) {
  Writer w{out};
  w.header(node, Type::Response);
  w.raw(m.nonce.data(), m.nonce.size());
  put_announce(w, m.who);
}

void encode(Bytes& out, NodeId node, const Manifest& m) {
  Writer w{out};
  w.header(node, Type::Manifest);
  w.u32(m.sid);
  w.u16(m.flags);
  w.u16(m.block_size);
  w.u32(m.total);
  w.u32(m.first);
  w.u16(uint16_t(m.entries.size()));
  for (auto& e : m.entries) put_entry(w, e);
  if ((m.flags & kDsync) && m.first == 0) {
    w.str16(m.root);
    w.u16(uint16_t(m.excludes.size()));
    for (auto& x : m.excludes) w.str16(x);
    w.u8(has_version(m.deletion) ? 1 : 0);
    if (has_version(m.deletion)) put_version(w, m.deletion);
  }
}

void encode(Bytes& out, NodeId node, const Report& m) {
  Writer w{out};
  w.header(node, Type::Report);
  w.u32(m.sid);
  w.u16(uint16_t(m.items.size()));
  for (auto& i : m.items) {
    w.u32(i.idx);
    w.u8(uint8_t(i.code));
    w.u16(i.err);
  }
}

void encode(Bytes& out, NodeId node, const Data& m) {
  Writer w{out};
  w.header(node, Type::Data);
  w.u32(m.sid);
  w.u32(m.idx);
  w.u64(m.offset);
  w.u8(m.coded ? 2 : m.last ? 1 : 0);
  if (m.coded)
    w.u64(m.coded);
  else if (m.last)
    w.raw(m.hash.data(), 16);
  w.raw(m.payload.data(), m.payload.size());
}

void encode(Bytes& out, NodeId node, const Poll& m) {
  Writer w{out};
  w.header(node, Type::Poll);
  w.u32(m.sid);
  w.u32(m.seq);
  w.u32(m.sent_upto);
  w.u64(m.sent_offset);
  w.u32(m.lowest_open);
}

void encode(Bytes& out, NodeId node, const Nack& m) {
  Writer w{out};
  w.header(node, Type::Nack);
  w.u32(m.sid);
  w.u32(m.poll_seq);
  w.u16(uint16_t(m.files.size()));
  for (auto& f : m.files) {
    w.u32(f.idx);
    w.u16(uint16_t(f.ranges.size()));
    for (auto& r : f.ranges) {
      w.u32(r.first);
      w.u32(r.count);
    }
  }
}

void encode(Bytes& out, NodeId node, const End& m) {
  Writer w{out};
  w.header(node, Type::End);
  w.u32(m.sid);
  w.u8(m.abort ? 1 : 0);
}

void encode(Bytes& out, NodeId node, const DeleteReport& m) {
  Writer w{out};
  w.header(node, Type::DeleteReport);
  w.u32(m.sid);
  w.u32(m.chunk);
  w.u8(m.final ? 1 : 0);
  w.u16(uint16_t(m.items.size()));
  for (auto& i : m.items) {
    w.u16(i.err);
    w.str16(i.path);
  }
}

void encode(Bytes& out, NodeId node, const DeleteAck& m) {
  Writer w{out};
  w.header(node, Type::DeleteAck);
  w.u32(m.sid);
  w.u32(m.chunk);
}

Error decode_header(std::span<const uint8_t> in, Header& h) {
  if (in.size() < kHeaderSize) return Error::Truncated;
  Reader r{in};
  if (r.u32() != kMagic) return Error::BadMagic;
  if (r.u8() != kVersion) return Error::BadVersion;
  uint8_t t = r.u8();
  r.u16();
  h.node = r.u64();
  switch (Type(t)) {
    case Type::Hello:
    case Type::Heartbeat:
    case Type::Bye:
    case Type::Challenge:
    case Type::Response:
    case Type::Manifest:
    case Type::Report:
    case Type::Data:
    case Type::Poll:
    case Type::Nack:
    case Type::End:
    case Type::DeleteReport:
    case Type::DeleteAck:
      h.type = Type(t);
      return Error::Ok;
  }
  return Error::BadType;
}

Error decode(std::span<const uint8_t> in, Announce& m) {
  Reader r{in};
  return get_announce(r, m);
}

Error decode(std::span<const uint8_t> in, Challenge& m) {
  Reader r{in};
  r.raw(m.nonce.data(), m.nonce.size());
  return r.finish();
}

Error decode(std::span<const uint8_t> in, Response& m) {
  Reader r{in};
  r.raw(m.nonce.data(), m.nonce.size());
  return get_announce(r, m.who);
}

Error decode(std::span<const uint8_t> in, Manifest& m) {
  Reader r{in};
  m.sid = r.u32();
  m.flags = r.u16();
  m.block_size = r.u16();
  m.total = r.u32();
  m.first = r.u32();
  uint16_t n = r.u16();
  if (!r.ok) return Error::Truncated;
  if (m.block_size < kMinBlock || m.total > kMaxEntries || uint64_t(m.first) + n > m.total)
    return Error::BadValue;
  m.entries.clear();
  m.entries.reserve(n);
  for (uint16_t i = 0; i < n; ++i) {
    Entry e;
    if (!get_entry(r, e)) return r.ok ? Error::BadValue : Error::Truncated;
    m.entries.push_back(std::move(e));
  }
  if ((m.flags & kDsync) && m.first == 0) {
    m.root = r.str16();
    uint16_t nx = r.u16();
    for (uint16_t i = 0; i < nx && r.ok; ++i) m.excludes.push_back(r.str16());
    uint8_t has = r.u8();
    if (r.ok && has > 1) return Error::BadValue;
    if (has && !get_version(r, m.deletion)) return r.ok ? Error::BadValue : Error::Truncated;
  }
  return r.finish();
}

Error decode(std::span<const uint8_t> in, Report& m) {
  Reader r{in};
  m.sid = r.u32();
  uint16_t n = r.u16();
  if (!r.need(size_t(n) * kReportItemSize)) return Error::Truncated;
  m.items.resize(n);
  for (auto& i : m.items) {
    i.idx = r.u32();
    uint8_t c = r.u8();
    if (c > uint8_t(Code::Newer)) return Error::BadValue;
    i.code = Code(c);
    i.err = r.u16();
  }
  return r.finish();
}

Error decode(std::span<const uint8_t> in, Data& m) {
  Reader r{in};
  m.sid = r.u32();
  m.idx = r.u32();
  m.offset = r.u64();
  uint8_t f = r.u8();
  if (f > 2) return r.ok ? Error::BadValue : Error::Truncated;
  m.last = f == 1;
  m.coded = 0;
  if (m.last) r.raw(m.hash.data(), 16);
  if (f == 2) {
    m.coded = r.u64();
    if (r.ok && !(m.coded & 1)) return Error::BadValue;
  }
  if (!r.ok) return Error::Truncated;
  m.payload = r.rest();
  return Error::Ok;
}

Error decode(std::span<const uint8_t> in, Poll& m) {
  Reader r{in};
  m.sid = r.u32();
  m.seq = r.u32();
  m.sent_upto = r.u32();
  m.sent_offset = r.u64();
  m.lowest_open = r.u32();
  return r.finish();
}

Error decode(std::span<const uint8_t> in, Nack& m) {
  Reader r{in};
  m.sid = r.u32();
  m.poll_seq = r.u32();
  uint16_t n = r.u16();
  m.files.clear();
  for (uint16_t i = 0; i < n && r.ok; ++i) {
    NackFile f;
    f.idx = r.u32();
    uint16_t nr = r.u16();
    if (!r.need(size_t(nr) * 8)) break;
    f.ranges.resize(nr);
    for (auto& br : f.ranges) {
      br.first = r.u32();
      br.count = r.u32();
      if (br.count == 0) return Error::BadValue;
    }
    m.files.push_back(std::move(f));
  }
  return r.finish();
}

Error decode(std::span<const uint8_t> in, End& m) {
  Reader r{in};
  m.sid = r.u32();
  uint8_t a = r.u8();
  if (r.ok && a > 1) return Error::BadValue;
  m.abort = a == 1;
  return r.finish();
}

Error decode(std::span<const uint8_t> in, DeleteReport& m) {
  Reader r{in};
  m.sid = r.u32();
  m.chunk = r.u32();
  uint8_t f = r.u8();
  if (r.ok && f > 1) return Error::BadValue;
  m.final = f == 1;
  uint16_t n = r.u16();
  m.items.clear();
  for (uint16_t i = 0; i < n && r.ok; ++i) {
    DeleteItem d;
    d.err = r.u16();
    d.path = r.str16();
    m.items.push_back(std::move(d));
  }
  return r.finish();
}

Error decode(std::span<const uint8_t> in, DeleteAck& m) {
  Reader r{in};
  m.sid = r.u32();
  m.chunk = r.u32();
  return r.finish();
}

}  // namespace makuo::wire
