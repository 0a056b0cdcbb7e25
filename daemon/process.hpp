// What makuosan does to its own process at start-up, in makuosan 1.3.6's order: who it will
// run as, limits, privileges, fork. Misconfiguration throws StartupError: the one place where
// this project uses exceptions, because nothing can go on after it.
#pragma once
#include <sys/types.h>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/options.hpp"

namespace makuo {

struct StartupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// -u, -g, -G resolved (names or numbers). -u NAME also brings that user's primary group.
struct Ids {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;
};
Ids resolve_ids(const DaemonOptions& o);
void drop_privileges(const Ids& ids);

// Every descriptor we may have (in-flight files hold one or two each); core dumps with -C.
void raise_limits(bool core);

// The console password: the first line of a file that only its owner can read (4-63 bytes).
std::string read_password(const std::string& file);

// Removes the temporaries that a crash left behind below dirfd (never the only copy of
// anything); how many.
size_t remove_stale_temps(int dirfd);

// Forks into the background: the parent prints the child's pid and exits; the child gets a
// session of its own and /dev/null for stdio. prepare and child run around the fork (Asio's
// notify_fork).
void daemonize(const std::function<void()>& prepare, const std::function<void()>& child);

}  // namespace makuo
