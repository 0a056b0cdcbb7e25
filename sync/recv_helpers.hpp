// Internal to the receiving side of a push (sync/recv_*.cpp): what its files share.
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <string>

#include "sync/version_vector.hpp"
#include "sync/wire.hpp"

namespace makuo::recv_detail {

inline timespec ts_of(int64_t ns) {
  timespec t;
  t.tv_sec = time_t(ns / 1000000000);
  t.tv_nsec = long(ns % 1000000000);
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    --t.tv_sec;
  }
  return t;
}

inline const PathVersion kNoVersion;

inline size_t depth(const std::string& p) {
  return size_t(std::count(p.begin(), p.end(), '/'));
}

// Under automatic propagation a directory's mtime is replicated state: changing an entry in it
// on behalf of a push must not make it look locally changed (see Committer::keep_dir_mtime).
class KeepMtime {
 public:
  // own: the descriptor is ours to close.
  KeepMtime(int dirfd, bool on, bool own = false) : fd_(dirfd), own_(own) {
    on_ = on && fstat(fd_, &st_) == 0;
  }
  KeepMtime(const KeepMtime&) = delete;
  KeepMtime& operator=(const KeepMtime&) = delete;
  ~KeepMtime() {
    if (on_) {
      timespec t[2] = {{0, UTIME_OMIT}, st_.st_mtim};
      futimens(fd_, t);
    }
    if (own_) close(fd_);
  }

 private:
  int fd_;
  bool own_, on_ = false;
  struct stat st_ {};
};

inline bool owner_matches(const wire::Entry& e, const struct stat& st, bool privileged) {
  return !privileged || (st.st_uid == local_uid(e) && st.st_gid == local_gid(e));
}

}  // namespace makuo::recv_detail
