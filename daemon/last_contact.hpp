// When this server last had company (STATE/daemon/last-contact, nanoseconds of the wall clock):
// a server away longer than tombstones are kept no longer knows the deletions made meanwhile,
// and says so at start.
#pragma once
#include <cstdint>

namespace makuo {

class LastContact {
 public:
  explicit LastContact(int daemon_dir_fd) : dirfd_(daemon_dir_fd) {}
  // 0 when never saved.
  int64_t load() const;
  // At most once a minute; atomically (rename).
  void save(int64_t now_ns);

 private:
  int dirfd_;
  int64_t saved_ = 0;
};

}  // namespace makuo
