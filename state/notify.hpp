// STATE/notify/: how the daemon tells the mounts of its base directory what it changed behind
// them, so that their kernel caches show received files at once. Each mount binds a datagram
// socket there named PID.sock; a datagram is one path relative to the base directory, without
// a terminator. Best effort by design: a mount that is gone or busy misses the message and its
// short cache timeout covers it; a socket nobody listens on is removed by the daemon.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace makuo::state::notify {

inline constexpr std::string_view kSuffix = ".sock";
inline constexpr size_t kMaxPath = 4095;  // a longer path is not sent

inline std::string socket_name(pid_t pid) {
  return std::to_string(pid) + std::string(kSuffix);
}
inline bool is_socket_name(std::string_view n) {
  return n.size() > kSuffix.size() && n.ends_with(kSuffix);
}

}  // namespace makuo::state::notify
