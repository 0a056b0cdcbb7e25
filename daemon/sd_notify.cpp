#include "daemon/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace makuo {

bool sd_notify_message(const std::string& msg) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if (len >= sizeof a.sun_path) return false;
  std::memcpy(a.sun_path, path, len);
  if (a.sun_path[0] == '@') a.sun_path[0] = '\0';  // abstract namespace
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&a),
                   socklen_t(offsetof(sockaddr_un, sun_path) + len)) >= 0;
  close(fd);
  return ok;
}

}  // namespace makuo
