#include "fs/passthrough.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "fs/caller_creds.hpp"
#include "fs/kernel_channel.hpp"
#include "sync/clock.hpp"

namespace makuo::fs {
namespace {

using journal::Op;

struct ProcPath {
  char s[32];
  explicit ProcPath(int fd) { std::snprintf(s, sizeof s, "/proc/self/fd/%d", fd); }
};

Passthrough& self(fuse_req_t req) {
  return *static_cast<Passthrough*>(fuse_req_userdata(req));
}
Inode& node(fuse_req_t req, fuse_ino_t ino) {
  return self(req).inodes().get(ino);
}

int stat_of(int fd, struct stat& st) {
  return fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

// An open file's handle: our descriptor in the low 31 bits, kRegular for an open made by
// set_handle (which release_handle undoes), its passthrough backing id (0: none) in the high
// half.
constexpr uint64_t kRegular = uint64_t(1) << 31;
int file_fd(const fuse_file_info* fi) {
  return int(uint32_t(fi->fh) & ~uint32_t(kRegular));
}

void reply_entry_or_err(fuse_req_t req, int err, const fuse_entry_param& e) {
  if (err)
    fuse_reply_err(req, err);
  else
    fuse_reply_entry(req, &e);
}

// ---- names ----------------------------------------------------------------------------------

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Passthrough& fs = self(req);
  fuse_entry_param e{};
  int err = fs.entry_for(node(req, parent).fd, name, e);
  if (err == ENOENT) {
    e.ino = 0;  // a negative entry the kernel may cache (the daemon invalidates it)
    e.entry_timeout = fs.config().timeout;
    fuse_reply_entry(req, &e);
    return;
  }
  reply_entry_or_err(req, err, e);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  self(req).inodes().forget(ino, n);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* f) {
  for (size_t k = 0; k < count; ++k) self(req).inodes().forget(f[k].ino, f[k].nlookup);
  fuse_reply_none(req);
}

// Creates name in parent with make() as the caller (see caller_creds.hpp), answers with its
// entry.
template <class Make>
void make_node(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, Op op, Make make) {
  Passthrough& fs = self(req);
  Inode& p = node(req, parent);
  int err;
  {
    std::optional<AsCaller> as;
    if (fs.creates_as_caller()) as.emplace(fuse_req_ctx(req)->uid, fuse_req_ctx(req)->gid);
    err = make(p.fd) != 0 ? errno : 0;
  }
  if (!err && !fs.creates_as_caller()) fs.set_owner(p.fd, name, -1, req, mode);
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_entry_param e{};
  err = fs.entry_for(p.fd, name, e);
  fs.record(op, p, name);
  reply_entry_or_err(req, err, e);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  make_node(req, parent, name, mode | S_IFDIR, Op::Mkdir,
            [&](int dfd) { return mkdirat(dfd, name, mode); });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  make_node(req, parent, name, mode, Op::Create,
            [&](int dfd) { return mknodat(dfd, name, mode, rdev); });
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  make_node(req, parent, name, S_IFLNK, Op::Symlink,
            [&](int dfd) { return symlinkat(link, dfd, name); });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Passthrough& fs = self(req);
  Inode& i = node(req, ino);
  Inode& np = node(req, newparent);
  if (linkat(i.fd, "", np.fd, newname, AT_EMPTY_PATH) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_entry_param e{};
  int err = fs.entry_for(np.fd, newname, e);
  fs.record(Op::Link, np, newname);
  reply_entry_or_err(req, err, e);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Inode& p = node(req, parent);
  if (unlinkat(p.fd, name, 0) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  self(req).record(Op::Unlink, p, name);
  fuse_reply_err(req, 0);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Inode& p = node(req, parent);
  if (unlinkat(p.fd, name, AT_REMOVEDIR) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  self(req).record(Op::Rmdir, p, name);
  fuse_reply_err(req, 0);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
  Passthrough& fs = self(req);
  Inode& p = node(req, parent);
  Inode& np = node(req, newparent);
  if (renameat2(p.fd, name, np.fd, newname, flags) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  std::string from = fs.rel_path(p), to = fs.rel_path(np);
  if (from != "\x01" && to != "\x01") {
    from = from.empty() ? name : from + "/" + name;
    to = to.empty() ? newname : to + "/" + newname;
    if (flags & RENAME_EXCHANGE) {
      // Both names now hold what the other held, subtrees included.
      fs.record_path(Op::Rescan, from);
      fs.record_path(Op::Rescan, to);
    } else {
      fs.record_path(Op::Rename, from, to);
    }
  }
  fuse_reply_err(req, 0);
}

// We write as root, which keeps set-ID bits the base file system would clear for the caller:
// clear them as the kernel would for a caller without CAP_FSETID (the kernel leaves it to us,
// see kernel_channel.hpp).
void kill_setid(int fd, fuse_req_t req) {
  if (fuse_req_ctx(req)->uid == 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0) return;
  mode_t m = st.st_mode & 07777;
  mode_t kill = (m & S_ISUID) | ((m & S_ISGID) && (m & S_IXGRP) ? S_ISGID : 0);
  if (kill) fchmod(fd, m & ~kill);
}

// ---- attributes -----------------------------------------------------------------------------

// chmod of what an O_PATH descriptor names. fchmodat2 (6.6) takes the descriptor itself;
// the path through /proc costs twice as much (3.2-4.2 us against 1.8-2.3 here, and tar chmods
// every file it writes). A symlink gets EOPNOTSUPP either way. Where fchmodat2 fails and the
// path does not (ENOSYS before 6.6, a seccomp filter's EPERM), the path serves from then on.
int chmod_path_fd(int path_fd, mode_t mode) {
  constexpr long kFchmodat2 = 452;  // one number on every architecture
  static std::atomic<bool> usable{true};
  bool use2 = usable.load(std::memory_order_relaxed);
  if (use2 && syscall(kFchmodat2, path_fd, "", mode, AT_EMPTY_PATH) == 0) return 0;
  int r = fchmodat(AT_FDCWD, ProcPath(path_fd).s, mode, 0);
  if (r == 0 && use2) usable = false;
  return r;
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  if (int err = stat_of(node(req, ino).fd, st)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_attr(req, &st, self(req).config().timeout);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int valid, fuse_file_info* fi) {
  Passthrough& fs = self(req);
  Inode& i = node(req, ino);
  int res = 0;
  if (valid & FUSE_SET_ATTR_MODE)
    res = fi ? fchmod(file_fd(fi), attr->st_mode) : chmod_path_fd(i.fd, attr->st_mode);
  if (res == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
    uid_t u = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : uid_t(-1);
    gid_t g = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : gid_t(-1);
    res = fchownat(i.fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  if (res == 0 && (valid & FUSE_SET_ATTR_SIZE)) {
    res = fi ? ftruncate(file_fd(fi), attr->st_size) : truncate(ProcPath(i.fd).s, attr->st_size);
    if (res == 0 && (valid & FUSE_SET_ATTR_KILL_SUID)) {
      int fd = fi ? file_fd(fi) : open(ProcPath(i.fd).s, O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        kill_setid(fd, req);
        if (!fi) close(fd);
      }
    }
  }
  if (res == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
    timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (valid & FUSE_SET_ATTR_ATIME_NOW)
      tv[0].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_ATIME)
      tv[0] = attr->st_atim;
    if (valid & FUSE_SET_ATTR_MTIME_NOW)
      tv[1].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_MTIME)
      tv[1] = attr->st_mtim;
    res = fi ? futimens(file_fd(fi), tv)
             : utimensat(i.fd, "", tv, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  if (res != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  if (fi && valid == FUSE_SET_ATTR_SIZE) {
    i.dirty = true;  // ftruncate: recorded when the file is closed, like its writes
  } else if (!i.dirty) {
    // A file being written (tar's fchown, fchmod and futimens come before its close, and the
    // kernel sends them without the descriptor) has its record still to come, at release: that
    // one names the path as well, after this change. A release that took the mark before this
    // test left it to us.
    fs.record_path(Op::Setattr, fs.rel_path(i));
  }
  struct stat st;
  if (int err = stat_of(i.fd, st)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_attr(req, &st, fs.config().timeout);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  char buf[PATH_MAX + 1];
  ssize_t n = readlinkat(node(req, ino).fd, "", buf, PATH_MAX);
  if (n < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  buf[n] = 0;
  fuse_reply_readlink(req, buf);
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  struct statvfs sv;
  if (fstatvfs(node(req, ino).fd, &sv) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_reply_statfs(req, &sv);
}

// ---- files ----------------------------------------------------------------------------------

int open_flags(Passthrough& fs, int flags) {
  flags &= ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY);
  if (fs.config().writeback) {
    // The kernel may read around partial page writes, and it computes append offsets itself.
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
    flags &= ~O_APPEND;
  }
  return flags | O_CLOEXEC;
}

// The daemon holds its exclusive lock for a few system calls; waiting longer than that means
// someone else holds one (a program writing in the base directory itself), and the write
// goes on without ours, as it would have before the lock existed.
void lock_shared_briefly(int fd) {
  for (int waited_us = 0; flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
       waited_us += 200) {
    if (waited_us >= 100000) return;
    usleep(200);
  }
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Passthrough& fs = self(req);
  Inode& i = node(req, ino);
  int fd = open(ProcPath(i.fd).s, open_flags(fs, fi->flags));
  if (fd < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
  // Held while open for writing: the daemon does not replace a file being written here (the
  // local write is the newer one). Taken before the check below, as the daemon holds its
  // exclusive lock from its checks to its rename (Committer::run): so a writer either has
  // the lock first, or finds the file replaced.
  if (writing) lock_shared_briefly(fd);
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_nlink == 0 && S_ISREG(st.st_mode)) {
    // The kernel's name led to a file the daemon has since replaced: ESTALE makes it look the
    // name up again and open what it names now.
    close(fd);
    fuse_reply_err(req, ESTALE);
    return;
  }
  if ((fi->flags & O_TRUNC) && writing) {
    i.dirty = true;
    kill_setid(fd, req);
  }
  // No FLUSH round trip on close: a write is recorded at RELEASE, when the last descriptor
  // closes (as inotify's IN_CLOSE_WRITE). That comes after close(2) returned, so the open is
  // recorded now: if this mount dies before the release, the daemon still knows, and it holds
  // the file back while our lock says it is open for writing.
  fi->noflush = true;
  if (writing && S_ISREG(st.st_mode)) fs.record_path(Op::Write, fs.rel_path(i));
  if (S_ISREG(st.st_mode))
    fs.set_handle(req, fi, fd, i, writing, st);
  else
    fi->fh = uint64_t(uint32_t(fd));
  if (fuse_reply_open(req, fi) != 0) {
    if (S_ISREG(st.st_mode)) fs.release_handle(fi, i);
    close(fd);
  }
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
  Passthrough& fs = self(req);
  Inode& p = node(req, parent);
  int fd;
  struct stat st;
  // The kernel sends CREATE for a name it holds as absent, which the daemon (or a program in
  // the base) may have filled since. We run as root and hand what we create to the caller: an
  // existing file opened here would become the caller's (a root-only one, truncated), and a
  // symlink followed here could name any file outside the base. So we only ever create; for a
  // name taken meanwhile, ESTALE makes the kernel look it up again and open or follow what is
  // there itself, with the caller's rights (or answer EEXIST to an O_EXCL caller). If the
  // daemon replaces our new file before our lock (see op_open), the same happens.
  bool excl = fi->flags & O_EXCL;
  int flags = open_flags(fs, fi->flags) | O_CREAT | O_EXCL;  // O_EXCL follows no symlink
  for (int tries = 0;; ++tries) {
    fd = openat(p.fd, name, flags, mode);
    if (fd < 0) {
      fuse_reply_err(req, errno == EEXIST && !excl ? ESTALE : errno);
      return;
    }
    lock_shared_briefly(fd);
    if (tries == 3 || fstat(fd, &st) != 0 || st.st_nlink > 0) break;
    close(fd);
  }
  fs.set_owner(p.fd, name, fd, req, mode);
  fuse_entry_param e{};
  if (int err = fs.entry_for(p.fd, name, e)) {
    close(fd);
    fuse_reply_err(req, err);
    return;
  }
  fs.record(Op::Create, p, name);
  fi->noflush = true;  // recorded at release, see op_open
  Inode& created = fs.inodes().get(e.ino);
  bool regular = S_ISREG(e.attr.st_mode);
  if (regular)
    fs.set_handle(req, fi, fd, created, (fi->flags & O_ACCMODE) != O_RDONLY, e.attr);
  else
    fi->fh = uint64_t(uint32_t(fd));
  if (fuse_reply_create(req, &e, fi) != 0) {
    if (regular) fs.release_handle(fi, created);
    close(fd);
  }
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = fuse_buf_flags(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  buf.buf[0].fd = file_fd(fi);
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void op_write_buf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
  out.buf[0].flags = fuse_buf_flags(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  out.buf[0].fd = file_fd(fi);
  out.buf[0].pos = off;
  ssize_t n = fuse_buf_copy(&out, in, fuse_buf_copy_flags(0));
  if (n < 0) {
    fuse_reply_err(req, int(-n));
    return;
  }
  node(req, ino).dirty = true;
  kill_setid(file_fd(fi), req);
  fuse_reply_write(req, size_t(n));
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  self(req).record_written(node(req, ino));
  fuse_reply_err(req, 0);
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (fi->fh & kRegular) self(req).release_handle(fi, node(req, ino));
  close(file_fd(fi));
  self(req).record_written(node(req, ino));  // pages of a mapping written after the last flush
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  int fd = file_fd(fi);
  int res = datasync ? fdatasync(fd) : fsync(fd);
  int err = res == 0 ? 0 : errno;
  self(req).record_written(node(req, ino));
  fuse_reply_err(req, err);
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                  fuse_file_info* fi) {
  if (fallocate(file_fd(fi), mode, off, len) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  node(req, ino).dirty = true;
  fuse_reply_err(req, 0);
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  off_t r = lseek(file_fd(fi), off, whence);
  if (r < 0)
    fuse_reply_err(req, errno);
  else
    fuse_reply_lseek(req, r);
}

// ---- directories ----------------------------------------------------------------------------

struct DirHandle {
  DIR* dp = nullptr;
  off_t offset = 0;
  dirent* entry = nullptr;  // read but not yet handed to the kernel
};

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  int fd = openat(node(req, ino).fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  auto* d = new DirHandle;
  d->dp = fdopendir(fd);
  if (!d->dp) {
    int err = errno;
    close(fd);
    delete d;
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = reinterpret_cast<uint64_t>(d);
  if (fuse_reply_open(req, fi) != 0) {
    closedir(d->dp);
    delete d;
  }
}

// readdir and readdirplus: the same walk; "plus" looks each entry up as well, one round trip
// instead of one per name for "ls -l", "rm -rf" and tar (the kernel asks for it when it sees
// them coming, FUSE_CAP_READDIRPLUS_AUTO).
void read_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
              bool plus) {
  Passthrough& fs = self(req);
  auto* d = reinterpret_cast<DirHandle*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  if (off != d->offset) {
    seekdir(d->dp, off);
    d->entry = nullptr;
    d->offset = off;
  }
  int err = 0;
  for (;;) {
    if (!d->entry) {
      errno = 0;
      d->entry = readdir(d->dp);
      if (!d->entry) {
        err = errno;
        break;
      }
    }
    const char* name = d->entry->d_name;
    off_t next = d->entry->d_off;
    size_t n;
    if (!plus) {
      struct stat st {};
      st.st_ino = d->entry->d_ino;
      st.st_mode = mode_t(d->entry->d_type) << 12;
      n = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
      if (n > size - used) break;
    } else {
      fuse_entry_param e{};
      // While the pruner makes room, entries go without a lookup (ino 0: the kernel lists
      // the name and asks for it when used) rather than each taking a descriptor.
      bool bare = !std::strcmp(name, ".") || !std::strcmp(name, "..") || fs.inodes().crowded();
      if (bare) {
        e.attr.st_ino = d->entry->d_ino;
        e.attr.st_mode = mode_t(d->entry->d_type) << 12;
      } else if (int lerr = fs.entry_for(node(req, ino).fd, name, e)) {
        if (lerr == ENOENT) {  // gone since it was listed
          d->entry = nullptr;
          continue;
        }
        err = lerr;
        break;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
      if (n > size - used) {
        if (e.ino) fs.inodes().forget(e.ino, 1);  // the kernel will not hold this lookup
        break;
      }
    }
    used += n;
    d->entry = nullptr;
    d->offset = next;
  }
  if (err && used == 0)
    fuse_reply_err(req, err);
  else
    fuse_reply_buf(req, buf.data(), used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  read_dir(req, ino, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  read_dir(req, ino, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  auto* d = reinterpret_cast<DirHandle*>(fi->fh);
  closedir(d->dp);
  delete d;
  fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  int fd = dirfd(reinterpret_cast<DirHandle*>(fi->fh)->dp);
  int res = datasync ? fdatasync(fd) : fsync(fd);
  fuse_reply_err(req, res == 0 ? 0 : errno);
}

// ---- extended attributes --------------------------------------------------------------------
// Through /proc/self/fd, as O_PATH descriptors take no xattr calls. A symlink's own xattrs are
// out of reach that way; Linux allows none in the user namespace on symlinks anyway.

bool is_symlink(Inode& i) {
  struct stat st;
  return stat_of(i.fd, st) == 0 && S_ISLNK(st.st_mode);
}

// getxattr/listxattr answer: the size asked for with a zero-size buffer, else the bytes.
void reply_xattr(fuse_req_t req, ssize_t n, const std::vector<char>& buf) {
  if (n < 0)
    fuse_reply_err(req, errno);
  else if (buf.empty())
    fuse_reply_xattr(req, size_t(n));
  else
    fuse_reply_buf(req, buf.data(), size_t(n));
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
  Inode& i = node(req, ino);
  if (is_symlink(i)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (setxattr(ProcPath(i.fd).s, name, value, size, flags) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  self(req).record_path(Op::Xattr, self(req).rel_path(i));
  fuse_reply_err(req, 0);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Inode& i = node(req, ino);
  if (is_symlink(i)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  std::vector<char> buf(size);
  reply_xattr(req, getxattr(ProcPath(i.fd).s, name, size ? buf.data() : nullptr, size), buf);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Inode& i = node(req, ino);
  if (is_symlink(i)) {
    if (size == 0)
      fuse_reply_xattr(req, 0);
    else
      fuse_reply_buf(req, nullptr, 0);
    return;
  }
  std::vector<char> buf(size);
  reply_xattr(req, listxattr(ProcPath(i.fd).s, size ? buf.data() : nullptr, size), buf);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Inode& i = node(req, ino);
  if (is_symlink(i)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  if (removexattr(ProcPath(i.fd).s, name) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  self(req).record_path(Op::Xattr, self(req).rel_path(i));
  fuse_reply_err(req, 0);
}

void op_init(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<Passthrough*>(userdata);
  if (fs->config().writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  if (conn->capable & FUSE_CAP_READDIRPLUS)
    conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  if (conn->capable & FUSE_CAP_SPLICE_READ) conn->want |= FUSE_CAP_SPLICE_READ;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  // Locks stay in the kernel: correct on one host, which is all a local mount promises.
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

fuse_lowlevel_ops make_ops(bool xattr) {
  fuse_lowlevel_ops o{};
  o.init = op_init;
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.forget_multi = op_forget_multi;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.readlink = op_readlink;
  o.mknod = op_mknod;
  o.mkdir = op_mkdir;
  o.unlink = op_unlink;
  o.rmdir = op_rmdir;
  o.symlink = op_symlink;
  o.rename = op_rename;
  o.link = op_link;
  o.open = op_open;
  o.read = op_read;
  o.write_buf = op_write_buf;
  o.flush = op_flush;
  o.release = op_release;
  o.fsync = op_fsync;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.readdirplus = op_readdirplus;
  o.releasedir = op_releasedir;
  o.fsyncdir = op_fsyncdir;
  o.statfs = op_statfs;
  if (xattr) {
    o.setxattr = op_setxattr;
    o.getxattr = op_getxattr;
    o.listxattr = op_listxattr;
    o.removexattr = op_removexattr;
  }
  o.create = op_create;
  o.fallocate = op_fallocate;
  o.lseek = op_lseek;
  return o;
}

}  // namespace

Passthrough::Passthrough(FsConfig cfg, int root_fd, journal::Writer& journal)
    : cfg_(std::move(cfg)),
      inodes_(root_fd),
      journal_(journal),
      as_caller_(enable_create_as_caller()) {}

const fuse_lowlevel_ops& Passthrough::ops(bool xattr) {
  static const fuse_lowlevel_ops with = make_ops(true), without = make_ops(false);
  return xattr ? with : without;
}

// "\x01" when the object has no name under the base any more (unlinked, or moved out).
std::string Passthrough::rel_path(const Inode& i) {
  if (&i == &inodes_.root()) return {};
  std::string p;
  Named n = name_of(i.fd, p);
  if (n == Named::kYes) return p;
  if (n == Named::kTooDeep) {
    // The kernel names objects up to PATH_MAX bytes from the root; deeper ones are changed
    // but cannot be recorded. Say so (msync -r still sends them: it walks relative paths).
    ++journal_errors_;
    int64_t now = realtime_ns(), last = last_error_log_.load();
    if (now - last > 1000000000 && last_error_log_.compare_exchange_strong(last, now))
      spdlog::error("change not recorded: its absolute path is longer than {} bytes", PATH_MAX);
  }
  return "\x01";
}

Passthrough::Named Passthrough::name_of(int fd, std::string& rel) {
  rel.clear();
  char buf[PATH_MAX + 1];
  ssize_t n = readlink(ProcPath(fd).s, buf, PATH_MAX);
  if (n < 0 || n == PATH_MAX) return Named::kTooDeep;
  std::string p(buf, size_t(n));
  if (p.ends_with(" (deleted)")) {
    struct stat st;
    if (stat_of(fd, st) != 0 || st.st_nlink == 0) return Named::kNo;
  }
  const std::string& b = cfg_.base;
  if (b == "/") {
    if (p.size() > 1) rel = p.substr(1);
    return Named::kYes;
  }
  if (p == b) return Named::kYes;
  if (p.size() > b.size() && p.compare(0, b.size(), b) == 0 && p[b.size()] == '/') {
    rel = p.substr(b.size() + 1);
    return Named::kYes;
  }
  return Named::kNo;
}

void Passthrough::record(journal::Op op, const Inode& parent, const char* name) {
  std::string p = rel_path(parent);
  if (p == "\x01") return;
  record_path(op, p.empty() ? std::string(name) : p + "/" + name);
}

void Passthrough::record_path(journal::Op op, std::string path, std::string to) {
  if (path == "\x01") return;
  int err = journal_.append({op, realtime_ns(), std::move(path), std::move(to)});
  if (!err) return;
  ++journal_errors_;
  // The operation itself succeeded and stays answered as such; what the operator must hear
  // about is that its record went missing, and whether the rescan that covers it is on disk
  // yet (at most once a second, and whenever that changes).
  bool owed = journal_.owed();
  int64_t now = realtime_ns(), last = last_error_log_.load();
  if ((now - last > 1000000000 || owed != logged_owed_.exchange(owed)) &&
      last_error_log_.compare_exchange_strong(last, now))
    spdlog::error("change journal: append failed: {} ({} changes not recorded so far); {}",
                  std::strerror(err), journal_errors_.load(),
                  owed ? "a rescan of the whole tree will be recorded once it has room"
                       : "a rescan of the whole tree is recorded instead");
}

void Passthrough::record_written(Inode& i) {
  if (i.dirty.exchange(false)) record_path(Op::Write, rel_path(i));
}

// We create as root; the object belongs to the caller, as on the base file system. The group
// stays inherited below a set-group-ID directory.
void Passthrough::set_owner(int dirfd, const char* name, int fd, fuse_req_t req, mode_t mode) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  static const bool root = geteuid() == 0;  // makuofs never changes its user
  if (!root || (ctx->uid == 0 && ctx->gid == 0)) return;
  struct stat pst;
  gid_t g = ctx->gid;
  if (stat_of(dirfd, pst) == 0 && (pst.st_mode & S_ISGID)) g = gid_t(-1);
  if (fd >= 0)
    fchown(fd, ctx->uid, g);
  else
    fchownat(dirfd, name, ctx->uid, g, AT_SYMLINK_NOFOLLOW);
  // chown clears set-ID bits the caller asked for and may keep on its own file. By name, never
  // through a symlink put there meanwhile: that would make its target set-ID.
  if ((mode & 06000) && !S_ISLNK(mode) && !S_ISDIR(mode)) {
    if (fd >= 0)
      fchmod(fd, mode & 07777);
    else
      fchmodat(dirfd, name, mode & 07777, AT_SYMLINK_NOFOLLOW);
  }
}

void Passthrough::set_handle(fuse_req_t req, fuse_file_info* fi, int fd, Inode& i, bool writing,
                             const struct stat& st) {
  fi->fh = uint64_t(uint32_t(fd)) | kRegular;
  if (!passthrough_active()) return;
  std::lock_guard lk(backing_mu_);
  if (!i.backing && !i.plain_opens) {
    // A set-ID file written by a user must lose its set-ID bits (see kill_setid): such writes
    // have to come through us.
    bool setid = (st.st_mode & S_ISUID) || ((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP));
    if (!(setid && fuse_req_ctx(req)->uid != 0)) {
      int32_t id = register_backing(i.fd);
      if (id > 0) {
        i.backing = id;
      } else if (!backing_refused_.exchange(true)) {
        spdlog::warn("passthrough refused by the kernel ({}): reads and writes go through us",
                     std::strerror(-id));
      }
    }
  }
  if (!i.backing) {
    ++i.plain_opens;
    return;
  }
  ++i.backing_opens;
  fi->fh |= uint64_t(uint32_t(i.backing)) << 32;
  reply_with_backing(i.backing);
  // Writes no longer reach us: a file opened for writing counts as written.
  if (writing) i.dirty = true;
}

int32_t Passthrough::register_backing(int path_fd) {
  // The kernel opens each passthrough open's backing file anew, with that open's flags, from
  // the path of the file registered here: so the O_PATH descriptor we hold serves, where the
  // kernel takes one (6.18 does; it saves an open and a close per first open of an inode).
  // Older kernels refuse it (EBADF) and take an open file instead.
  bool opath = !backing_wants_open_.load(std::memory_order_relaxed);
  if (opath) {
    int32_t id = backing_open(path_fd);
    if (id > 0) return id;
  }
  // Readable and writable, so that any later open of the inode can share it; a running
  // program (ETXTBSY) or a read-only file system leave it read-only, as they would leave
  // every open.
  ProcPath pp(path_fd);
  int bfd = open(pp.s, O_RDWR | O_CLOEXEC);
  if (bfd < 0) bfd = open(pp.s, O_RDONLY | O_CLOEXEC);
  int32_t id = bfd < 0 ? -errno : backing_open(bfd);
  if (bfd >= 0) close(bfd);  // the kernel holds the backing file now
  if (opath && id > 0) backing_wants_open_ = true;
  return id;
}

void Passthrough::release_handle(const fuse_file_info* fi, Inode& i) {
  if (!passthrough_active()) return;
  std::lock_guard lk(backing_mu_);
  if (int32_t(fi->fh >> 32) == 0) {
    if (i.plain_opens) --i.plain_opens;
    return;
  }
  if (i.backing_opens && --i.backing_opens == 0) {
    backing_close(i.backing);
    i.backing = 0;
  }
}

int Passthrough::entry_for(int dirfd, const char* name, fuse_entry_param& e) {
  int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == EMFILE || err == ENFILE) inodes_.report_exhausted();
    return err;
  }
  struct stat st;
  if (int err = stat_of(fd, st)) {
    close(fd);
    return err;
  }
  Inode& i = inodes_.add_lookup(fd, st);
  e.ino = inodes_.id(i);
  e.attr = st;
  e.attr_timeout = cfg_.timeout;
  e.entry_timeout = cfg_.timeout;
  return 0;
}

}  // namespace makuo::fs
