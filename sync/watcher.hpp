// makuosan --watch: inotify on every directory of the base as a second change source, feeding
// the same change journal as makuofs. New directories are watched and then rescanned (what was
// created in them before the watch existed is not missed), moves are paired by cookie into
// renames, and a lost event queue (IN_Q_OVERFLOW) or a full watch table is answered by a
// rescan and a warning. Sans-Asio: the daemon calls on_readable() and on_timer().
#pragma once
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "state/journal.hpp"
#include "sync/transport.hpp"

namespace makuo {

struct WatchStats {
  uint64_t events = 0, records = 0, overflows = 0, watch_failures = 0;
  size_t watched = 0;
};

class Watcher {
 public:
  Watcher(std::string base_path, journal::Writer& out);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Creates the inotify instance and watches the whole tree. 0 or errno.
  int start();
  int fd() const { return fd_; }
  // Drains the events that are ready.
  void on_readable(TimePoint now);
  // Flushes files still open for writing, retries directories the watch table refused.
  // Returns when it wants to be called again.
  TimePoint on_timer(TimePoint now);
  const WatchStats& stats() const { return stats_; }

 private:
  void record(journal::Op op, const std::string& path, const std::string& to = {});
  // Watches dir and everything below it; returns how many directories could not be watched.
  size_t watch_tree(const std::string& rel);
  bool add_watch(const std::string& rel);
  void forget_tree(const std::string& rel);
  void moved_dir(const std::string& from, const std::string& to);
  void rescan_all(const char* why);
  std::string abs(const std::string& rel) const;

  std::string base_;
  journal::Writer& out_;
  int fd_ = -1;
  std::unordered_map<int, std::string> wd_path_;
  std::map<std::string, int> path_wd_;
  std::set<std::string> modified_;   // written, not yet closed
  std::set<std::string> unwatched_;  // the watch table was full
  TimePoint retry_at_{};
  bool warned_full_ = false;
  WatchStats stats_;
};

}  // namespace makuo
