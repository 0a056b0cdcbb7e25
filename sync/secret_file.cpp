#include "sync/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace makuo {

std::string read_secret_file(const std::string& path, std::string_view what, size_t max_bytes,
                             std::string_view missing_hint) {
  std::string name = std::string(what) + " " + path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    throw std::runtime_error(name + ": " + strerror(e) +
                             (e == ENOENT ? std::string(missing_hint) : std::string()));
  }
  struct stat st;
  std::string why;
  if (fstat(fd, &st) != 0) {
    why = name + ": " + strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = name + " is not a regular file";
  } else if (st.st_mode & 077) {
    char m[8];
    snprintf(m, sizeof m, "%04o", unsigned(st.st_mode & 07777));
    why = name + " is readable by others (mode " + m + "): chmod 600 it";
  } else if (size_t(st.st_size) > max_bytes) {
    why = name + " is longer than " + std::to_string(max_bytes) + " bytes";
  }
  std::string s;
  while (why.empty()) {
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) why = name + ": " + strerror(errno);
    if (n <= 0) break;
    s.append(buf, size_t(n));
    if (s.size() > max_bytes)
      why = name + " is longer than " + std::to_string(max_bytes) + " bytes";
  }
  close(fd);
  if (!why.empty()) throw std::runtime_error(why);
  return s;
}

}  // namespace makuo
