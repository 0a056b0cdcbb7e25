#include "sync/tree_index.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

}  // namespace

IndexEntry index_entry_of(const wire::Entry& e) {
  IndexEntry ie;
  ie.kind = e.kind;
  ie.mode = e.mode;
  ie.uid = e.uid;
  ie.gid = e.gid;
  ie.size = e.kind == wire::Kind::Dir ? 0 : e.size;
  ie.mtime_ns = e.mtime_ns;
  return ie;
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

bool same_version(const IndexEntry& ie, const struct stat& st) {
  if (ie.kind != kind_of(st.st_mode)) return false;
  return ie.kind == wire::Kind::Dir ||
         (ie.size == uint64_t(st.st_size) && ie.mtime_ns == mtime_ns(st));
}

std::vector<wire::Version> descend_from(const IndexEntry& old) {
  if (old.kind == wire::Kind::Dir) return {};
  std::vector<wire::Version> v{old.version()};
  for (auto& a : old.ancestors) {
    if (v.size() >= wire::kMaxAncestors) break;
    v.push_back(a);
  }
  return v;
}

TreeIndex::TreeIndex(int dirfd, std::string name)
    : dirfd_(dirfd), name_(std::move(name)), log_name_(name_ + ".log") {}

TreeIndex::~TreeIndex() {
  if (logfd_ >= 0) close(logfd_);
}

int TreeIndex::load(std::vector<std::string>& warnings, uid_t uid, gid_t gid) {
  uid_ = uid;
  gid_ = gid;
  auto replay = [&](const std::string& file, std::vector<uint8_t>& bytes) {
    if (bytes.size() < kIndexMagic.size() ||
        std::memcmp(bytes.data(), kIndexMagic.data(), kIndexMagic.size()) != 0) {
      if (!bytes.empty()) warnings.push_back("index " + file + ": not an index file; ignored");
      return;
    }
    size_t pos = kIndexMagic.size();
    while (pos < bytes.size()) {
      IndexRecord r;
      size_t used = 0;
      IndexDecode d = decode_index_record(std::span(bytes).subspan(pos), r, used);
      if (d != IndexDecode::Ok) {
        warnings.push_back("index " + file + ": " + std::to_string(bytes.size() - pos) +
                           " damaged bytes at the end skipped (a crash while writing)");
        break;
      }
      pos += used;
      switch (r.op) {
        case IndexRecord::Op::Put:
          map_[r.path] = std::move(r.entry);
          break;
        case IndexRecord::Op::EraseTree:
          map_.erase(map_.lower_bound(r.path + "/"), map_.lower_bound(upper_bound_of_tree(r.path)));
          map_.erase(r.path);
          break;
        case IndexRecord::Op::Stamp:
          stamp_ns_ = std::max(stamp_ns_, r.stamp_ns);
          break;
      }
    }
  };
  std::vector<uint8_t> snap, logb;
  int e1 = read_file(dirfd_, name_, snap);
  int e2 = read_file(dirfd_, log_name_, logb);
  if (e1 && e1 != ENOENT) return e1;
  if (e2 && e2 != ENOENT) return e2;
  fresh_ = e1 == ENOENT && e2 == ENOENT;
  // Replaying the whole log over the snapshot is safe even when a crash came between writing
  // a new snapshot and emptying the log: every path ends as its last record left it.
  replay(name_, snap);
  replay(log_name_, logb);
  snapshot_bytes_ = snap.size();
  return open_log();
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

void TreeIndex::log(const IndexRecord& r) {
  encode_index_record(pending_, r);
}

void TreeIndex::put(const std::string& path, const IndexEntry& e) {
  auto [it, fresh] = map_.try_emplace(path, e);
  if (!fresh) {
    if (it->second == e) return;
    it->second = e;
  }
  IndexRecord r;
  r.op = IndexRecord::Op::Put;
  r.path = path;
  r.entry = e;
  log(r);
}

void TreeIndex::erase_tree(const std::string& path) {
  auto lo = map_.lower_bound(path + "/"), hi = map_.lower_bound(upper_bound_of_tree(path));
  size_t n = map_.erase(path);
  if (lo != hi) {
    map_.erase(lo, hi);
    ++n;
  }
  if (!n) return;
  IndexRecord r;
  r.op = IndexRecord::Op::EraseTree;
  r.path = path;
  log(r);
}

void TreeIndex::rename_tree(const std::string& from, const std::string& to) {
  if (from == to || to.starts_with(from + "/")) return;
  std::vector<std::pair<std::string, IndexEntry>> moved;
  if (auto it = map_.find(from); it != map_.end()) moved.emplace_back(to, it->second);
  auto lo = map_.lower_bound(from + "/"), hi = map_.lower_bound(upper_bound_of_tree(from));
  for (auto it = lo; it != hi; ++it)
    moved.emplace_back(to + it->first.substr(from.size()), it->second);
  if (moved.empty()) return;
  erase_tree(from);
  erase_tree(to);
  for (auto& [p, e] : moved) put(p, e);
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
  for (auto& [p, e] : map_) {
    r.path = p;
    r.entry = e;
    encode_index_record(buf, r);
    if (buf.size() >= (1 << 20)) {
      if ((err = write_all(fd, buf.data(), buf.size()))) break;
      total += buf.size();
      buf.clear();
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
  if (log_bytes_ + pending_.size() > std::max(kMinCompact, snapshot_bytes_)) {
    pending_.clear();
    return write_snapshot(now_ns);
  }
  if (int e = write_all(logfd_, pending_.data(), pending_.size())) return e;
  log_bytes_ += pending_.size();
  pending_.clear();
  if (sync && fdatasync(logfd_) != 0) return errno;
  return 0;
}

LocalVersion TreeIndex::local_version(const std::string& path, const struct stat& st,
                                      const std::string& self) const {
  LocalVersion v;
  const IndexEntry* ie = find(path);
  if (ie && same_version(*ie, st)) {
    v.origin = ie->origin;
    v.hash = ie->hash;
    v.ancestors = ie->ancestors;
    return v;
  }
  v.origin = self;
  if (ie) v.ancestors = descend_from(*ie);
  return v;
}

void TreeIndex::note_local(wire::Entry& e, const std::string& self) {
  const IndexEntry* old = find(e.path);
  if (e.kind == wire::Kind::Absent) {
    e.origin = self;
    if (old) e.ancestors = descend_from(*old);
    erase_tree(e.path);
    return;
  }
  IndexEntry n = index_entry_of(e);
  if (e.kind != wire::Kind::Dir) {
    // Equal size and mtime with other content: a write within the mtime tick of the version
    // it replaced (one received from elsewhere, say), which is ours.
    bool rewritten = e.hash && old && old->hash && *e.hash != *old->hash;
    if (old && old->kind == e.kind && old->version() == n.version() && !rewritten) {
      // The same version again (a metadata change, or pushed once more): its history stays.
      n.origin = old->origin;
      n.ancestors = old->ancestors;
      n.hash = e.hash ? e.hash : old->hash;
    } else {
      n.origin = self;
      if (old) n.ancestors = descend_from(*old);
      n.hash = e.hash;
    }
    e.origin = n.origin;
    e.ancestors = n.ancestors;
    if (e.kind == wire::Kind::File) e.hash = n.hash;
  }
  put(e.path, n);
}

void TreeIndex::annotate(wire::Entry& e, const std::string& self) const {
  if (e.kind == wire::Kind::Dir || e.kind == wire::Kind::Absent) return;
  const IndexEntry* old = find(e.path);
  if (old && old->kind == e.kind && old->version() == wire::Version{e.mtime_ns, e.size}) {
    e.origin = old->origin;
    e.ancestors = old->ancestors;
    if (e.kind == wire::Kind::File && !e.hash) e.hash = old->hash;
    return;
  }
  e.origin = self;
  if (old) e.ancestors = descend_from(*old);
}

void TreeIndex::note_applied(const std::string& path, const struct stat* st, const wire::Entry* e,
                             const std::string& sender) {
  if (!st) {
    erase_tree(path);
    return;
  }
  IndexEntry n = index_entry_of(*st);
  const IndexEntry* old = find(path);
  if (e && e->kind == n.kind && (n.kind == wire::Kind::Dir || e->mtime_ns == n.mtime_ns)) {
    // The incoming version, with its history.
    if (n.kind != wire::Kind::Dir) {
      n.origin = e->origin.empty() ? sender : e->origin;
      n.ancestors = e->ancestors;
      if (n.kind == wire::Kind::File && e->size == n.size) n.hash = e->hash;
    }
  } else if (old && same_version(*old, *st)) {
    n.origin = old->origin;  // our receiver changed its metadata only
    n.ancestors = old->ancestors;
    n.hash = old->hash;
  } else if (n.kind != wire::Kind::Dir) {
    n.origin = sender;  // e.g. moved here by the sender's rename
  }
  if (n.kind != wire::Kind::Dir && old && old->kind == n.kind && old->version() == n.version()) {
    if (!n.hash) n.hash = old->hash;
  }
  put(path, n);
}

}  // namespace makuo
