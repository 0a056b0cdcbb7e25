#include "sync/tree_index.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "sync/fsops.hpp"

namespace makuo {
namespace {

constexpr uint64_t kMinCompact = 4 << 20;  // the log may grow to this before folding

int read_file(int dirfd, const std::string& name, std::vector<uint8_t>& out) {
  int fd = openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  uint8_t buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  int err = n < 0 ? errno : 0;
  close(fd);
  return err;
}

std::string upper_bound_of_tree(const std::string& path) {
  return path + char('/' + 1);  // every "path/..." sorts below "path0"
}

// The entries of m at path and below it.
template <class Map>
auto tree_range(Map& m, const std::string& path) {
  return std::make_pair(m.lower_bound(path + "/"), m.lower_bound(upper_bound_of_tree(path)));
}

IndexEntry tomb_of(const PathVersion& v, int64_t when_ns) {
  IndexEntry t;
  t.kind = wire::Kind::Absent;
  t.mtime_ns = when_ns;
  t.version = v;
  return t;
}

}  // namespace

IndexEntry index_entry_of(const wire::Entry& e) {
  IndexEntry ie;
  ie.kind = e.kind;
  ie.mode = e.mode;
  ie.uid = e.uid;
  ie.gid = e.gid;
  ie.size = e.kind == wire::Kind::Dir ? 0 : e.size;
  ie.mtime_ns = e.mtime_ns;
  if (e.kind == wire::Kind::File) ie.hash = e.hash;
  return ie;
}

wire::Entry entry_of_tombstone(const std::string& path, const IndexEntry& t) {
  wire::Entry e;
  e.kind = wire::Kind::Absent;
  e.path = path;
  e.mtime_ns = t.mtime_ns;
  e.version = t.version;
  return e;
}

IndexEntry index_entry_of(const struct stat& st) {
  IndexEntry ie;
  ie.kind = kind_of(st.st_mode);
  ie.mode = st.st_mode & 07777;
  ie.uid = st.st_uid;
  ie.gid = st.st_gid;
  ie.size = S_ISDIR(st.st_mode) ? 0 : uint64_t(st.st_size);
  ie.mtime_ns = mtime_ns(st);
  return ie;
}

bool same_state(const IndexEntry& ie, const struct stat& st, bool dir_mtime) {
  if (ie.kind != kind_of(st.st_mode) || ie.mode != (st.st_mode & 07777) || ie.uid != st.st_uid ||
      ie.gid != st.st_gid)
    return false;
  if (ie.kind == wire::Kind::Dir) return !dir_mtime || ie.mtime_ns == mtime_ns(st);
  return ie.size == uint64_t(st.st_size) && ie.mtime_ns == mtime_ns(st);
}

bool same_state(const IndexEntry& ie, const wire::Entry& e) {
  if (ie.kind != e.kind) return false;
  if (e.kind == wire::Kind::Absent) return true;
  if (ie.hash && e.hash && *ie.hash != *e.hash) return false;
  return ie.mode == e.mode && ie.uid == e.uid && ie.gid == e.gid && ie.mtime_ns == e.mtime_ns &&
         (ie.kind == wire::Kind::Dir || ie.size == e.size);
}

TreeIndex::TreeIndex(int dirfd, std::string name)
    : dirfd_(dirfd), name_(std::move(name)), log_name_(name_ + ".log") {}

TreeIndex::~TreeIndex() {
  if (logfd_ >= 0) close(logfd_);
}

int TreeIndex::load(std::vector<std::string>& warnings, uid_t uid, gid_t gid) {
  uid_ = uid;
  gid_ = gid;
  auto apply = [&](IndexRecord& r) {
    switch (r.op) {
      case IndexRecord::Op::Put:
        if (r.entry.kind == wire::Kind::Absent) {
          map_.erase(r.path);
          tombs_[r.path] = std::move(r.entry);
        } else {
          tombs_.erase(r.path);
          map_[r.path] = std::move(r.entry);
        }
        break;
      case IndexRecord::Op::EraseTree:
        for (auto* m : {&map_, &tombs_}) {
          auto [lo, hi] = tree_range(*m, r.path);
          m->erase(lo, hi);
          m->erase(r.path);
        }
        break;
      case IndexRecord::Op::Erase:
        map_.erase(r.path);
        tombs_.erase(r.path);
        break;
      case IndexRecord::Op::Stamp:
        stamp_ns_ = std::max(stamp_ns_, r.stamp_ns);
        break;
    }
  };
  // Read a megabyte at a time, so that loading costs the index, not the index and its file.
  // Returns 0 or errno (ENOENT: no such file); bytes: the file's size.
  auto replay = [&](const std::string& file, uint64_t& bytes) -> int {
    Fd f(openat(dirfd_, file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f) return errno;
    struct stat st;
    if (fstat(f.get(), &st) != 0) return errno;
    bytes = uint64_t(st.st_size);
    std::vector<uint8_t> buf;
    size_t pos = 0;
    uint64_t consumed = 0;
    bool eof = false;
    auto fill = [&]() -> int {
      buf.erase(buf.begin(), buf.begin() + long(pos));
      pos = 0;
      size_t had = buf.size();
      buf.resize(had + (1 << 20));
      ssize_t n = read(f.get(), buf.data() + had, 1 << 20);
      buf.resize(had + size_t(std::max<ssize_t>(n, 0)));
      if (n <= 0) eof = true;
      return n < 0 ? errno : 0;
    };
    while (!eof && buf.size() < kIndexMagic.size())
      if (int e = fill()) return e;
    bool v1 = buf.size() >= kIndexMagicV1.size() &&
              std::memcmp(buf.data(), kIndexMagicV1.data(), kIndexMagicV1.size()) == 0;
    if (!v1 && (buf.size() < kIndexMagic.size() ||
                std::memcmp(buf.data(), kIndexMagic.data(), kIndexMagic.size()) != 0)) {
      if (bytes) warnings.push_back("index " + file + ": not an index file; ignored");
      return 0;
    }
    upgraded_ |= v1;
    pos = kIndexMagic.size();
    consumed = pos;
    for (;;) {
      IndexRecord r;
      size_t used = 0;
      IndexDecode d = decode_index_record(std::span(buf).subspan(pos), r, used, v1);
      if (d == IndexDecode::Truncated && !eof) {
        if (int e = fill()) return e;
        continue;
      }
      if (d != IndexDecode::Ok) {
        if (consumed < bytes)
          warnings.push_back("index " + file + ": " + std::to_string(bytes - consumed) +
                             " damaged bytes at the end skipped (a crash while writing)");
        return 0;
      }
      pos += used;
      consumed += used;
      apply(r);
    }
  };
  uint64_t snap_bytes = 0, log_bytes = 0;
  // Replaying the whole log over the snapshot is safe even when a crash came between writing
  // a new snapshot and emptying the log: every path ends as its last record left it.
  int e1 = replay(name_, snap_bytes);
  if (e1 && e1 != ENOENT) return e1;
  int e2 = replay(log_name_, log_bytes);
  if (e2 && e2 != ENOENT) return e2;
  fresh_ = e1 == ENOENT && e2 == ENOENT;
  snapshot_bytes_ = snap_bytes;
  if (int e = open_log()) return e;
  // A release 0.1 index is rewritten at once: its log must not be appended to in the new format.
  if (upgraded_) return write_snapshot(stamp_ns_);
  return 0;
}

uint64_t TreeIndex::max_clock() const {
  uint64_t m = 0;
  for (auto* map : {&map_, &tombs_})
    for (auto& [p, e] : *map) m = std::max(m, e.version.vv.max_counter());
  return m;
}

int TreeIndex::open_log() {
  if (logfd_ >= 0) close(logfd_);
  logfd_ = openat(dirfd_, log_name_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logfd_ < 0) return errno;
  if ((uid_ != uid_t(-1) || gid_ != gid_t(-1)) && fchown(logfd_, uid_, gid_) != 0) return errno;
  struct stat st;
  if (fstat(logfd_, &st) != 0) return errno;
  log_bytes_ = uint64_t(st.st_size);
  if (log_bytes_ < kIndexMagic.size()) return restart_log();  // empty, or a torn magic
  return 0;
}

int TreeIndex::restart_log() {
  if (ftruncate(logfd_, 0) != 0) return errno;
  if (int e = write_all(logfd_, kIndexMagic.data(), kIndexMagic.size())) return e;
  log_bytes_ = kIndexMagic.size();
  return 0;
}

const IndexEntry* TreeIndex::find(const std::string& path) const {
  auto it = map_.find(path);
  return it == map_.end() ? nullptr : &it->second;
}

const IndexEntry* TreeIndex::tombstone(const std::string& path) const {
  auto it = tombs_.find(path);
  return it == tombs_.end() ? nullptr : &it->second;
}

PathVersion TreeIndex::version_at(const std::string& path) const {
  if (const IndexEntry* e = find(path)) return e->version;
  if (const IndexEntry* t = tombstone(path)) return t->version;
  return {};
}

void TreeIndex::log(const std::string& path, const IndexEntry* e) {
  IndexRecord r;
  r.op = e ? IndexRecord::Op::Put : IndexRecord::Op::Erase;
  r.path = path;
  if (e) r.entry = *e;
  encode_index_record(pending_, r);
}

void TreeIndex::put(const std::string& path, const IndexEntry& e) {
  if (e.kind == wire::Kind::Absent) return set_tomb(path, e);
  tombs_.erase(path);
  auto [it, fresh] = map_.try_emplace(path, e);
  if (!fresh) {
    if (it->second == e) return;
    it->second = e;
  }
  log(path, &e);
}

void TreeIndex::set_tomb(const std::string& path, const IndexEntry& e) {
  map_.erase(path);
  tombs_[path] = e;
  log(path, &e);
}

void TreeIndex::erase_tree(const std::string& path) {
  bool any = false;
  for (auto* m : {&map_, &tombs_}) {
    auto [lo, hi] = tree_range(*m, path);
    any |= lo != hi || m->count(path);
    m->erase(lo, hi);
    m->erase(path);
  }
  if (!any) return;
  IndexRecord r;
  r.op = IndexRecord::Op::EraseTree;
  r.path = path;
  encode_index_record(pending_, r);
}

void TreeIndex::forget(const std::string& path) {
  if (map_.erase(path)) log(path, nullptr);
}

void TreeIndex::bury(const std::string& path, const PathVersion& v, int64_t when_ns) {
  std::vector<std::pair<std::string, IndexEntry>> below;
  auto [lo, hi] = tree_range(map_, path);
  for (auto it = lo; it != hi; ++it) {
    PathVersion cv{VersionVector::merge(it->second.version.vv, v.vv), v.origin};
    below.emplace_back(it->first, tomb_of(cv, when_ns));
  }
  for (auto& [p, t] : below) set_tomb(p, t);
  set_tomb(path, tomb_of(v, when_ns));
}

std::vector<std::pair<std::string, IndexEntry>> TreeIndex::tombstones_in(
    const std::string& dir) const {
  std::vector<std::pair<std::string, IndexEntry>> v;
  auto lo = dir.empty() ? tombs_.begin() : tombs_.lower_bound(dir + "/");
  auto hi = dir.empty() ? tombs_.end() : tombs_.lower_bound(upper_bound_of_tree(dir));
  size_t skip = dir.empty() ? 0 : dir.size() + 1;
  for (auto it = lo; it != hi; ++it)
    if (it->first.find('/', skip) == std::string::npos) v.emplace_back(*it);
  return v;
}

std::vector<std::pair<std::string, IndexEntry>> TreeIndex::tombstones_below(
    const std::string& path) const {
  std::vector<std::pair<std::string, IndexEntry>> v;
  if (auto it = tombs_.find(path); it != tombs_.end()) v.emplace_back(*it);
  auto [lo, hi] = tree_range(tombs_, path);
  v.insert(v.end(), lo, hi);
  return v;
}

void TreeIndex::expire(int64_t now_ns, int64_t keep_ns) {
  for (auto it = tombs_.begin(); it != tombs_.end();) {
    if (now_ns - it->second.mtime_ns > keep_ns) {
      log(it->first, nullptr);
      it = tombs_.erase(it);
    } else {
      ++it;
    }
  }
}

int TreeIndex::write_snapshot(int64_t now_ns) {
  std::string tmp = "." + name_ + ".tmp";
  int fd = openat(dirfd_, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  if ((uid_ != uid_t(-1) || gid_ != gid_t(-1)) && geteuid() == 0) (void)!fchown(fd, uid_, gid_);
  std::vector<uint8_t> buf(kIndexMagic.begin(), kIndexMagic.end());
  uint64_t total = 0;
  int err = 0;
  IndexRecord r;
  r.op = IndexRecord::Op::Put;
  for (auto* m : {&map_, &tombs_}) {
    for (auto& [p, e] : *m) {
      r.path = p;
      r.entry = e;
      encode_index_record(buf, r);
      if (buf.size() >= (1 << 20)) {
        if ((err = write_all(fd, buf.data(), buf.size()))) break;
        total += buf.size();
        buf.clear();
      }
    }
  }
  IndexRecord s;
  s.op = IndexRecord::Op::Stamp;
  s.stamp_ns = now_ns;
  encode_index_record(buf, s);
  if (!err) err = write_all(fd, buf.data(), buf.size());
  total += buf.size();
  if (!err && fdatasync(fd) != 0) err = errno;
  close(fd);
  if (!err && renameat(dirfd_, tmp.c_str(), dirfd_, name_.c_str()) != 0) err = errno;
  if (err) {
    unlinkat(dirfd_, tmp.c_str(), 0);
    return err;
  }
  snapshot_bytes_ = total;
  // The snapshot holds everything: the log starts again (through the descriptor we hold: the
  // file may belong to root, who created it before the privilege drop).
  return restart_log();
}

int TreeIndex::flush(int64_t now_ns, bool sync) {
  if (logfd_ < 0) return EBADF;
  // Even an idle index says every minute that we were running: after a crash, the last stamp
  // is when we stopped (rescan), give or take that minute.
  if (pending_.empty() && !sync && now_ns - written_ns_ < 60'000'000'000LL) return 0;
  written_ns_ = now_ns;
  IndexRecord s;
  s.op = IndexRecord::Op::Stamp;
  s.stamp_ns = now_ns;
  encode_index_record(pending_, s);
  // A start-up rescan of a large tree can fill megabytes here: they are not kept.
  auto release = [this] {
    if (pending_.capacity() > (1 << 20))
      std::vector<uint8_t>().swap(pending_);
    else
      pending_.clear();
  };
  if (log_bytes_ + pending_.size() > std::max(kMinCompact, snapshot_bytes_)) {
    release();
    return write_snapshot(now_ns);
  }
  if (int e = write_all(logfd_, pending_.data(), pending_.size())) return e;
  log_bytes_ += pending_.size();
  release();
  if (sync && fdatasync(logfd_) != 0) return errno;
  return 0;
}

PathVersion TreeIndex::local_version(const std::string& path, const struct stat* st,
                                     const std::string& self, uint64_t now) const {
  const IndexEntry* live = find(path);
  if (st) {
    // A directory's mtime moves with what is put in it, by our receiver too: its own changes
    // (mode, owner) are changes here; its entries' are judged on their own.
    if (live && same_state(*live, *st, false)) return live->version;
    return bump(version_at(path), self, now);  // changed here, not recorded yet
  }
  if (live) return bump(live->version, self, now);  // deleted here, not recorded yet
  return version_at(path);
}

bool TreeIndex::note_local(wire::Entry& e, const std::string& self, uint64_t now, int64_t now_ns) {
  const IndexEntry* live = find(e.path);
  if (e.kind == wire::Kind::Absent) {
    if (live) {
      e.version = bump(live->version, self, now);
      bury(e.path, e.version, now_ns);
      return true;
    }
    const IndexEntry* t = tombstone(e.path);
    if (t) e.version = t->version;  // deleted before (a rename's source, say): say it again
    return t != nullptr;
  }
  if (live && same_state(*live, e)) {
    e.version = live->version;
    if (e.kind == wire::Kind::File && !e.hash) e.hash = live->hash;
    if (e.hash && !live->hash) {
      IndexEntry n = *live;
      n.hash = e.hash;
      put(e.path, n);
    }
    return true;
  }
  e.version = bump(version_at(e.path), self, now);
  IndexEntry n = index_entry_of(e);
  n.version = e.version;
  put(e.path, n);
  return true;
}

void TreeIndex::annotate(wire::Entry& e, const std::string& self, uint64_t now) const {
  const IndexEntry* live = find(e.path);
  if (live && same_state(*live, e)) {
    e.version = live->version;
    if (e.kind == wire::Kind::File && !e.hash) e.hash = live->hash;
    return;
  }
  e.version = bump(version_at(e.path), self, now);
}

std::vector<std::pair<std::string, IndexEntry>> TreeIndex::live_tree_moved(
    const std::string& from, const std::string& to) const {
  std::vector<std::pair<std::string, IndexEntry>> moved;
  if (auto it = map_.find(from); it != map_.end()) moved.emplace_back(to, it->second);
  auto [lo, hi] = tree_range(map_, from);
  for (auto it = lo; it != hi; ++it)
    moved.emplace_back(to + it->first.substr(from.size()), it->second);
  return moved;
}

void TreeIndex::rename_tree(const std::string& from, const std::string& to, const std::string& self,
                            uint64_t now, int64_t now_ns) {
  if (from == to || to.starts_with(from + "/")) return;
  auto moved = live_tree_moved(from, to);
  // What stood at the target is gone, replaced.
  std::vector<std::pair<std::string, PathVersion>> replaced;
  if (auto it = map_.find(to); it != map_.end()) replaced.emplace_back(to, it->second.version);
  auto [tlo, thi] = tree_range(map_, to);
  for (auto it = tlo; it != thi; ++it) replaced.emplace_back(it->first, it->second.version);
  for (auto& [q, v] : replaced) set_tomb(q, tomb_of(bump(v, self, now), now_ns));
  for (auto& [q, e] : moved) {
    std::string p = from + q.substr(to.size());
    set_tomb(p, tomb_of(bump(e.version, self, now), now_ns));
    PathVersion carried{VersionVector::merge(version_at(q).vv, e.version.vv), e.version.origin};
    e.version = bump(carried, self, now);
    put(q, e);
  }
}

void TreeIndex::move_tree(const std::string& from, const std::string& to) {
  if (from == to || to.starts_with(from + "/")) return;
  auto moved = live_tree_moved(from, to);
  for (auto& [q, e] : moved) {
    std::string p = from + q.substr(to.size());
    map_.erase(p);
    log(p, nullptr);
  }
  for (auto& [q, e] : moved) put(q, e);
}

void TreeIndex::note_applied(const std::string& path, const struct stat* st, const PathVersion& v,
                             const std::optional<wire::Hash128>& hash, int64_t now_ns) {
  if (!st) return bury(path, v, now_ns);
  IndexEntry n = index_entry_of(*st);
  n.version = v;
  if (n.kind == wire::Kind::File) {
    n.hash = hash;
    const IndexEntry* old = find(path);
    if (!n.hash && old && old->hash && same_state(*old, *st)) n.hash = old->hash;
  }
  put(path, n);
}

void TreeIndex::stamp_push(wire::Entry& e, const std::string& self, uint64_t now) {
  e.version = bump(version_at(e.path), self, now);
  if (e.kind == wire::Kind::Absent) {
    if (find(e.path) || tombstone(e.path)) bury(e.path, e.version, e.mtime_ns);
    return;
  }
  const IndexEntry* live = find(e.path);
  IndexEntry n = index_entry_of(e);
  if (live && same_state(*live, e) && !n.hash) n.hash = live->hash;
  n.version = e.version;
  put(e.path, n);
}

int import_legacy_tombstones(int dirfd, const std::string& name, TreeIndex& index,
                             const std::string& self) {
  std::vector<uint8_t> bytes;
  if (int e = read_file(dirfd, name, bytes)) return e == ENOENT ? 0 : e;
  // One per line: "NS[/BASE_MTIME/BASE_SIZE]<TAB>PATH", '\\' and newlines in paths escaped.
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::string line;
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    int64_t when = std::strtoll(line.c_str(), nullptr, 10);
    std::string p;
    for (size_t i = tab + 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size())
        p += line[++i] == 'n' ? '\n' : line[i];
      else
        p += line[i];
    }
    if (when <= 0 || p.empty() || index.find(p)) continue;
    // A deletion made at that time, as release 0.1 ordered it: later changes win over it.
    index.bury(p, bump({}, self, uint64_t(when)), when);
  }
  return unlinkat(dirfd, name.c_str(), 0) == 0 ? 0 : errno;
}

}  // namespace makuo
