// The daemon's side of STATE/notify (state/notify.hpp): tells the makuofs mounts of this base
// directory which paths it changed behind them.
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
