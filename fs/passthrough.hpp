// makuofs's file system: a low-level FUSE passthrough over the base directory that records every
// mutation in the change journal after it succeeded and before it is answered.
#pragma once
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <mutex>
#include <string>

#include "fs/inode_table.hpp"
#include "state/journal.hpp"

namespace makuo::fs {

struct FsConfig {
  std::string base;        // canonical path of the base directory
  double timeout = 1.0;    // entry and attribute cache, seconds
  bool writeback = false;  // kernel write-back cache
  bool xattr = false;      // extended attributes passed through
};

class Passthrough {
 public:
  // root_fd: O_PATH descriptor of the base directory, opened before the mount covers it.
  // Construct it in the thread that starts the request threads, before it does (see
  // enable_create_as_caller).
  Passthrough(FsConfig cfg, int root_fd, journal::Writer& journal);

  // Without xattrs the handlers are absent: libfuse answers ENOSYS once, and the kernel then
  // answers EOPNOTSUPP itself, without asking us.
  static const fuse_lowlevel_ops& ops(bool xattr);
  InodeTable& inodes() { return inodes_; }
  const FsConfig& config() const { return cfg_; }
  uint64_t journal_errors() const { return journal_errors_; }
  // Directories, device nodes, FIFOs and symlinks are created with the caller's filesystem uid
  // and gid (caller_creds.hpp); false: created as root and handed over by name.
  bool creates_as_caller() const { return as_caller_; }

  // The handlers' shared helpers (public so the static trampolines in the .cpp can reach them).
  std::string rel_path(const Inode& i);
  // The path under the base of what descriptor fd leads to, without rel_path's bookkeeping:
  // kTooDeep past PATH_MAX, kNo when unlinked, moved out of the base directory, or closed.
  enum class Named { kYes, kNo, kTooDeep };
  Named name_of(int fd, std::string& rel);
  void record(journal::Op op, const Inode& parent, const char* name);
  void record_path(journal::Op op, std::string path, std::string to = {});
  void record_written(Inode& i);
  void set_owner(int dirfd, const char* name, int fd, fuse_req_t req, mode_t mode);
  int entry_for(int dirfd, const char* name, fuse_entry_param& e);
  // fi->fh for a new open of regular file i through fd: with the inode's passthrough backing id
  // when it can have one (the reply then hands it to the kernel), else without. st: the
  // file's attributes. The backing file is never fd (see register_backing): fd carries the
  // lock that says the file is open for writing, and a backing file lives as long as the
  // kernel's opens, also after a dead mount closed fd.
  void set_handle(fuse_req_t req, fuse_file_info* fi, int fd, Inode& i, bool writing,
                  const struct stat& st);
  // An open made by set_handle was released.
  void release_handle(const fuse_file_info* fi, Inode& i);

 private:
  // A backing id for the file path_fd (O_PATH) names, or -errno.
  int32_t register_backing(int path_fd);

  FsConfig cfg_;
  InodeTable inodes_;
  journal::Writer& journal_;
  std::atomic<uint64_t> journal_errors_{0};
  std::atomic<int64_t> last_error_log_{0};
  std::atomic<bool> logged_owed_{false};
  std::mutex backing_mu_;
  std::atomic<bool> backing_refused_{false};
  std::atomic<bool> backing_wants_open_{false};  // an O_PATH descriptor failed, an open did not
  const bool as_caller_;
};

}  // namespace makuo::fs
