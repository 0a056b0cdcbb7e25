// Tells the makuofs mounts of this base directory which paths the daemon changed behind them
// (one datagram per path to each mount's socket in STATE/notify), so that their kernel caches
// show received files at once. Best effort by design: a mount that is gone or busy misses the
// message and its short cache timeout covers it.
#pragma once
#include <string>
#include <vector>

#include "sync/transport.hpp"

namespace makuo {

class MountNotifier {
 public:
  explicit MountNotifier(std::string dir);
  ~MountNotifier();
  MountNotifier(const MountNotifier&) = delete;
  MountNotifier& operator=(const MountNotifier&) = delete;
  void changed(const std::string& path, TimePoint now);
  uint64_t sent() const { return sent_; }

 private:
  void refresh(TimePoint now);

  std::string dir_;
  int sock_ = -1;
  std::vector<std::string> targets_;
  TimePoint refreshed_{};
  uint64_t sent_ = 0;
};

}  // namespace makuo
