// File-system primitives that never leave the base directory: every open goes through
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a symlink on the way (planted by anyone)
// is refused instead of followed.
#pragma once
#include <sys/stat.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/wire.hpp"

namespace makuo {

// RAII file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

 private:
  int fd_ = -1;
};

// rel == "" opens the base itself. Returns fd or -errno.
int open_beneath(int basefd, std::string_view rel, int flags, mode_t mode = 0);

// The content hash of regular file rel beneath base; nullopt when it cannot be read.
std::optional<wire::Hash128> content_hash_beneath(int basefd, std::string_view rel);

// Opens directory rel, creating missing components and replacing files that stand in the way
// (as makuosan does). The components it creates are 0700 until the caller gives them their
// mode, rel itself leaf_mode: a private directory of a push is never open to all while its
// contents arrive, or after an abort. A symlink on the way is refused (-ELOOP); with
// replace_symlink, a symlink at rel itself is replaced. The directories it made are appended
// to created (when given). Returns fd or -errno.
int ensure_dir(int basefd, std::string_view rel, bool replace_symlink = false,
               mode_t leaf_mode = 0700, std::vector<std::string>* created = nullptr);

// makuofs holds a shared flock on a file while it is open for writing through the mount.
// lock_unless_written takes the exclusive one on rel (beneath dirfd) without waiting: the
// descriptor that holds it, or an empty Fd, with being_written set when a writer has it.
Fd lock_unless_written(int dirfd, std::string_view rel, bool& being_written);
// Whether rel is open for writing through makuofs (the lock above, taken and let go).
bool open_for_writing(int dirfd, std::string_view rel);
// A file kept open for writing longer than this goes as it is, and again once closed.
constexpr std::chrono::seconds kWriteHoldMax{30};

// lstat of rel beneath base. Returns 0 or errno.
int lstat_beneath(int basefd, std::string_view rel, struct stat& st);

// The names in directory dirfd, sorted, without "." and "..". The descriptor's own read
// position is left alone (it is read through a fresh descriptor). Returns 0 or errno.
int list_dir(int dirfd, std::vector<std::string>& names);

// Removes name in dirfd, recursively for directories, never following symlinks. 0 or errno.
int remove_tree_at(int dirfd, const std::string& name);

// write(2) until all n bytes are written (EINTR retried). 0 or errno.
int write_all(int fd, const void* p, size_t n);

// A fresh temporary name (kTempPrefix + random hex) for a sibling of the target.
std::string temp_name();

// Whether the disk still holds what listed says (type, size, mtime, mode, owner): a listing made
// on the worker is checked so before the event loop records anything from it.
bool still_there(int basefd, const wire::Entry& listed);

// Metadata of a stat result as it travels (owner names looked up with a cache).
wire::Entry entry_from_stat(const struct stat& st, std::string path);
wire::Kind kind_of(mode_t m);
mode_t type_bits(wire::Kind k);

// Local uid/gid for an entry: by name when known here, else the numeric id.
uid_t local_uid(const wire::Entry& e);
gid_t local_gid(const wire::Entry& e);

int64_t mtime_ns(const struct stat& st);

// What a path held when a receiver judged it against an incoming version. A tie of mtimes
// found at commit time is only safe to overwrite if the path still holds that: another push's
// commit or a local write within the same tick must be judged again.
struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp stamp_of(const struct stat& st);

}  // namespace makuo
