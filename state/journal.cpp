#include "state/journal.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "sync/clock.hpp"

namespace makuo::journal {
namespace {

constexpr size_t kFixed = 4 + 1 + 1 + 2 + 2 + 8;
constexpr const char* kSuffix = ".mkj";
constexpr const char* kCursor = "cursor";

void put(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
uint64_t get(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

bool is_segment(const std::string& name) {
  return name.size() > 4 && name[0] != '.' && name.ends_with(kSuffix);
}

// A writer holds its segment's lock while it may append; if we can take it, nobody will.
bool writer_gone(int fd) {
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return false;
  flock(fd, LOCK_UN);
  return true;
}

}  // namespace

const char* to_string(Op op) {
  switch (op) {
    case Op::Write:
      return "write";
    case Op::Create:
      return "create";
    case Op::Mkdir:
      return "mkdir";
    case Op::Unlink:
      return "unlink";
    case Op::Rmdir:
      return "rmdir";
    case Op::Symlink:
      return "symlink";
    case Op::Link:
      return "link";
    case Op::Rename:
      return "rename";
    case Op::Setattr:
      return "setattr";
    case Op::Xattr:
      return "xattr";
    case Op::Rescan:
      return "rescan";
  }
  return "?";
}

void encode(std::vector<uint8_t>& out, const Record& r) {
  size_t start = out.size();
  size_t pl = std::min(r.path.size(), kMaxPathLen), tl = std::min(r.to.size(), kMaxPathLen);
  put(out, kFixed + pl + tl + 8, 4);
  put(out, uint8_t(r.op), 1);
  put(out, 0, 1);
  put(out, pl, 2);
  put(out, tl, 2);
  put(out, uint64_t(r.time_ns), 8);
  out.insert(out.end(), r.path.begin(), r.path.begin() + long(pl));
  out.insert(out.end(), r.to.begin(), r.to.begin() + long(tl));
  put(out, XXH3_64bits(out.data() + start, out.size() - start), 8);
}

Decoded decode(std::span<const uint8_t> in, std::vector<Record>& out, size_t& consumed) {
  consumed = 0;
  while (consumed < in.size()) {
    auto rest = in.subspan(consumed);
    if (rest.size() < 4) return Decoded::Short;
    size_t len = get(rest.data(), 4);
    if (len < kFixed + 8 || len > kMaxRecord) return Decoded::Corrupt;
    if (rest.size() < len) return Decoded::Short;
    const uint8_t* p = rest.data();
    size_t pl = get(p + 6, 2), tl = get(p + 8, 2);
    uint8_t op = p[4];
    if (kFixed + pl + tl + 8 != len || op < 1 || op > kMaxOp || p[5] != 0 ||
        get(p + len - 8, 8) != XXH3_64bits(p, len - 8))
      return Decoded::Corrupt;
    Record r;
    r.op = Op(op);
    r.time_ns = int64_t(get(p + 10, 8));
    r.path.assign(reinterpret_cast<const char*>(p + kFixed), pl);
    r.to.assign(reinterpret_cast<const char*>(p + kFixed + pl), tl);
    out.push_back(std::move(r));
    consumed += len;
  }
  return Decoded::Ok;
}

size_t next_record(std::span<const uint8_t> in) {
  std::vector<Record> one;
  for (size_t off = 1; off + kFixed + 8 <= in.size(); ++off) {
    size_t len = get(in.data() + off, 4);
    if (len < kFixed + 8 || len > kMaxRecord || len > in.size() - off) continue;
    size_t used = 0;
    one.clear();
    if (decode(in.subspan(off, len), one, used) == Decoded::Ok && used == len) return off;
  }
  return in.size();
}

Writer::Writer(std::string dir, std::string tag, uint64_t segment_bytes)
    : dir_(std::move(dir)), tag_(std::move(tag)), segment_bytes_(segment_bytes) {}

Writer::~Writer() {
  if (fd_ >= 0) {
    fdatasync(fd_);
    close(fd_);
  }
  if (dirfd_ >= 0) close(dirfd_);
}

namespace {

// A descriptor of the journal directory of its own: dirfd's, or the directory at path.
int journal_dir(int dirfd, const std::string& path) {
  if (dirfd >= 0) return fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return -1;
  return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

}  // namespace

int Writer::open(int dirfd) {
  std::lock_guard lk(mu_);
  // Everything below goes through the descriptor (a daemon may lose access to the path).
  dirfd_ = journal_dir(dirfd, dir_);
  if (dirfd_ < 0) return errno;
  return new_segment();
}

int Writer::new_segment() {
  char name[96];
  std::snprintf(name, sizeof name, "%016llx-%d-%u-%s",
                static_cast<unsigned long long>(realtime_ns()), int(getpid()), seq_++,
                tag_.c_str());
  std::string tmp = std::string(".") + name + ".tmp";
  std::string final = std::string(name) + kSuffix;
  // Locked before it gets a name the reader looks at: it never sees it unlocked and empty.
  // O_EXCL: a new file, never what someone put at that name (makuofs writes as root into a
  // directory of the daemon's user).
  int fd = openat(dirfd_, tmp.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  struct stat dst;
  if (flock(fd, LOCK_EX) != 0 || fstat(dirfd_, &dst) != 0) {
    int e = errno;
    close(fd);
    unlinkat(dirfd_, tmp.c_str(), 0);
    return e;
  }
  // The daemon may run as another user than the mount: the segment belongs to the directory's
  // owner so that it can read and delete it.
  if (fchown(fd, dst.st_uid, dst.st_gid) != 0 && geteuid() == 0) {
    int e = errno;
    close(fd);
    unlinkat(dirfd_, tmp.c_str(), 0);
    return e;
  }
  if (renameat(dirfd_, tmp.c_str(), dirfd_, final.c_str()) != 0) {
    int e = errno;
    close(fd);
    unlinkat(dirfd_, tmp.c_str(), 0);
    return e;
  }
  fsync(dirfd_);
  if (fd_ >= 0) {
    fdatasync(fd_);
    close(fd_);  // releases the old segment's lock: the reader may finish and delete it
  }
  fd_ = fd;
  size_ = alloc_end_ = 0;
  torn_ = false;
  // Without room for the first records the segment is still usable: allocate() tries again.
  if (prealloc_) allocate(0);
  return 0;
}

int Writer::allocate(uint64_t len) {
  if (!prealloc_ || size_ + len + kReserve <= alloc_end_) return 0;
  uint64_t end = size_ + len + kReserve + kPrealloc;
  if (fallocate(fd_, FALLOC_FL_KEEP_SIZE, off_t(alloc_end_), off_t(end - alloc_end_)) != 0) {
    if (errno != EOPNOTSUPP) return errno;
    prealloc_ = false;  // then a full disk shows as a failed write
    return 0;
  }
  alloc_end_ = end;
  return 0;
}

int Writer::put(const Record& r, bool reserve) {
  if (torn_) {
    if (ftruncate(fd_, off_t(size_)) == 0)
      torn_ = false;
    else if (int e = new_segment())
      return e;
  }
  buf_.clear();
  encode(buf_, r);
  if (!(reserve && size_ + buf_.size() <= alloc_end_))
    if (int e = allocate(buf_.size())) return e;
  // One write(2): a reader sees a record whole or not yet (see Reader::read).
  ssize_t n = ::write(fd_, buf_.data(), buf_.size());
  if (n != ssize_t(buf_.size())) {
    int e = n < 0 ? errno : ENOSPC;
    // Appends go to the end of the file: whatever part of the record got there is cut off, or
    // the next record goes to a segment of its own (the reader skips a torn tail).
    if (ftruncate(fd_, off_t(size_)) != 0) torn_ = true;
    alloc_end_ = std::min(alloc_end_, size_);
    return e;
  }
  size_ += buf_.size();
  dirty_ = true;
  ++appended_;
  return 0;
}

int Writer::pay_rescan(bool reserve) {
  if (int e = put({Op::Rescan, realtime_ns(), "", ""}, reserve)) return e;
  owed_ = false;
  return 0;
}

int Writer::append(const Record& r) {
  std::lock_guard lk(mu_);
  if (fd_ < 0) return EBADF;
  if (owed_) {
    // The Rescan that is owed covers this change as well, whether or not it can be written.
    if (int e = pay_rescan(false)) {
      pay_rescan(true);
      return e;
    }
  }
  if (int e = put(r, false)) {
    owed_ = true;
    pay_rescan(true);
    return e;
  }
  // A segment that cannot be rolled yet is written on: the record is in.
  if (size_ >= segment_bytes_) new_segment();
  return 0;
}

int Writer::sync() {
  int fd;
  {
    std::lock_guard lk(mu_);
    if (owed_ && fd_ >= 0) pay_rescan(false);
    if (!dirty_ || fd_ < 0) return 0;
    dirty_ = false;
    fd = dup(fd_);
  }
  if (fd < 0) return errno;
  int r = fdatasync(fd) == 0 ? 0 : errno;
  close(fd);
  return r;
}

Reader::Reader(std::string dir) : dir_(std::move(dir)) {}

Reader::~Reader() {
  for (auto& [n, s] : segs_)
    if (s.fd >= 0) close(s.fd);
  if (dirfd_ >= 0) close(dirfd_);
}

int Reader::open(int dirfd) {
  dirfd_ = journal_dir(dirfd, dir_);
  if (dirfd_ < 0) return errno;
  std::string body;
  if (int cfd = openat(dirfd_, kCursor, O_RDONLY | O_CLOEXEC); cfd >= 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(cfd, buf, sizeof buf)) > 0) body.append(buf, size_t(n));
    close(cfd);
  }
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name;
    uint64_t off = 0;
    if (ls >> name >> off && is_segment(name)) segs_[name].done = segs_[name].read = off;
  }
  refresh();
  return 0;
}

void Reader::refresh() {
  int dup_fd = openat(dirfd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = dup_fd >= 0 ? fdopendir(dup_fd) : nullptr;
  if (!d) {
    if (dup_fd >= 0) close(dup_fd);
    return;
  }
  std::map<std::string, bool> seen;
  while (dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (is_segment(n)) seen[n] = true;
  }
  closedir(d);
  for (auto& [n, _] : seen) {
    Segment& s = segs_[n];
    if (s.fd < 0) s.fd = openat(dirfd_, n.c_str(), O_RDONLY | O_CLOEXEC);
  }
  for (auto it = segs_.begin(); it != segs_.end();) {
    if (!seen.count(it->first)) {
      if (it->second.fd >= 0) close(it->second.fd);
      it = segs_.erase(it);
    } else {
      ++it;
    }
  }
}

namespace {

// How many bytes from off on are no whole record (off is not the start of one).
uint64_t skip_damage(int fd, uint64_t off, uint64_t size) {
  constexpr size_t kWindow = 1 << 20;
  std::vector<uint8_t> buf;
  uint64_t skipped = 0;
  while (off + skipped < size) {
    buf.resize(size_t(std::min<uint64_t>(size - off - skipped, kWindow)));
    ssize_t n = pread(fd, buf.data(), buf.size(), off_t(off + skipped));
    if (n <= 0) break;
    size_t next = next_record({buf.data(), size_t(n)});
    if (next < size_t(n)) return skipped + next;
    if (off + skipped + uint64_t(n) >= size) break;
    // Every record that begins this early would have fitted in the window.
    skipped += uint64_t(n) > kMaxRecord ? uint64_t(n) - kMaxRecord : 1;
  }
  return size - off;
}

}  // namespace

Reader::Position Reader::read(std::vector<Record>& out, std::vector<std::string>& warnings,
                              size_t max_bytes) {
  refresh();
  Position pos;
  std::vector<uint8_t> buf;
  size_t budget = max_bytes;
  for (auto& [name, s] : segs_) {
    if (s.fd < 0) continue;
    struct stat st;
    if (fstat(s.fd, &st) != 0) continue;
    s.size = uint64_t(st.st_size);
    while (s.read < s.size && budget > 0) {
      size_t want =
          size_t(std::min<uint64_t>(s.size - s.read, std::max<size_t>(budget, kMaxRecord)));
      buf.resize(want);
      ssize_t n = pread(s.fd, buf.data(), want, off_t(s.read));
      if (n <= 0) break;
      size_t used = 0;
      Decoded r = decode({buf.data(), size_t(n)}, out, used);
      s.read += used;
      budget -= std::min(budget, used);
      if (r == Decoded::Ok || (r == Decoded::Short && used > 0)) continue;
      // Short at the end: a writer may be mid-append, unless it is gone (then it is a tail
      // torn by a crash). Corrupt: never a record in the making (the kernel shows a file's
      // new size only after the bytes). Either way, on to the next whole record, if any.
      if (r == Decoded::Short && !writer_gone(s.fd)) break;
      size_t skip = skip_damage(s.fd, s.read, s.size);
      warnings.push_back("journal " + name + ": " + std::to_string(skip) + " bytes after offset " +
                         std::to_string(s.read) + " are not a whole record; skipped");
      s.read += skip;
    }
    pos[name] = s.read;
  }
  return pos;
}

int Reader::commit(const Position& pos) {
  for (auto& [name, off] : pos) {
    auto it = segs_.find(name);
    if (it != segs_.end()) it->second.done = std::max(it->second.done, off);
  }
  // Finished segments go first, so that the cursor never names a file that is gone.
  for (auto it = segs_.begin(); it != segs_.end();) {
    Segment& s = it->second;
    struct stat st;
    if (s.fd >= 0 && writer_gone(s.fd) && fstat(s.fd, &st) == 0 && uint64_t(st.st_size) <= s.done) {
      unlinkat(dirfd_, it->first.c_str(), 0);
      close(s.fd);
      it = segs_.erase(it);
    } else {
      ++it;
    }
  }
  return save_cursor();
}

int Reader::save_cursor() {
  std::string body;
  for (auto& [name, s] : segs_) body += name + " " + std::to_string(s.done) + "\n";
  int fd = openat(dirfd_, ".cursor.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  ssize_t n = ::write(fd, body.data(), body.size());
  int e = n < 0 ? errno : size_t(n) != body.size() ? ENOSPC : 0;
  if (!e && fdatasync(fd) != 0) e = errno;
  close(fd);
  if (!e && renameat(dirfd_, ".cursor.tmp", dirfd_, kCursor) != 0) e = errno;
  return e;
}

void Reader::rewind() {
  for (auto& [n, s] : segs_) s.read = s.done;
}

uint64_t Reader::backlog() const {
  uint64_t b = 0;
  for (auto& [n, s] : segs_)
    if (s.size > s.done) b += s.size - s.done;
  return b;
}

}  // namespace makuo::journal
