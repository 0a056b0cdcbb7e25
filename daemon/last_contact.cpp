#include "daemon/last_contact.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "state/state_dir.hpp"

namespace makuo {

int64_t LastContact::load() const {
  int fd = openat(dirfd_, state::kLastContact, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32] = {};
  int64_t v = read(fd, buf, sizeof buf - 1) > 0 ? std::strtoll(buf, nullptr, 10) : 0;
  close(fd);
  return v;
}

void LastContact::save(int64_t now_ns) {
  if (now_ns - saved_ < 60000000000LL) return;
  saved_ = now_ns;
  std::string v = std::to_string(now_ns) + "\n";
  int fd = openat(dirfd_, ".last-contact.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  bool ok = write(fd, v.data(), v.size()) == ssize_t(v.size());
  close(fd);
  if (ok) renameat(dirfd_, ".last-contact.tmp", dirfd_, state::kLastContact);
}

}  // namespace makuo
