#include "sync/mount_notify.hpp"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "state/notify.hpp"

namespace makuo {

MountNotifier::MountNotifier(std::string dir) : dir_(std::move(dir)) {
  sock_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

MountNotifier::~MountNotifier() {
  if (sock_ >= 0) close(sock_);
}

void MountNotifier::refresh(TimePoint now) {
  refreshed_ = now;
  targets_.clear();
  DIR* d = opendir(dir_.c_str());
  if (!d) return;
  while (dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (state::notify::is_socket_name(n)) targets_.push_back(dir_ + "/" + n);
  }
  closedir(d);
}

void MountNotifier::changed(const std::string& path, TimePoint now) {
  if (sock_ < 0 || path.size() > state::notify::kMaxPath) return;
  if (now - refreshed_ > 2s) refresh(now);
  for (size_t i = 0; i < targets_.size();) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (targets_[i].size() >= sizeof a.sun_path) {
      targets_.erase(targets_.begin() + long(i));
      continue;
    }
    std::memcpy(a.sun_path, targets_[i].c_str(), targets_[i].size() + 1);
    if (sendto(sock_, path.data(), path.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) >=
        0) {
      ++sent_;
    } else if (errno == ECONNREFUSED) {
      unlink(targets_[i].c_str());  // its mount died without cleaning up
      targets_.erase(targets_.begin() + long(i));
      continue;
    }
    ++i;
  }
}

}  // namespace makuo
