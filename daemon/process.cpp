#include "daemon/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sync/fsops.hpp"
#include "sync/paths.hpp"
#include "sync/secret_file.hpp"

namespace makuo {
namespace {

std::string sys_error(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

gid_t gid_of(const std::string& g) {
  if (group* gr = getgrnam(g.c_str())) return gr->gr_gid;
  char* end = nullptr;
  long v = std::strtol(g.c_str(), &end, 10);
  if (*end || v < 0) throw StartupError("unknown group: " + g);
  return gid_t(v);
}

}  // namespace

Ids resolve_ids(const DaemonOptions& o) {
  Ids ids;
  if (!o.user.empty()) {
    if (passwd* pw = getpwnam(o.user.c_str())) {
      ids.uid = pw->pw_uid;
      ids.gid = pw->pw_gid;
    } else {
      char* end = nullptr;
      long v = std::strtol(o.user.c_str(), &end, 10);
      if (*end || v < 0) throw StartupError("unknown user: " + o.user);
      ids.uid = uid_t(v);
    }
  }
  if (!o.group.empty()) ids.gid = gid_of(o.group);
  for (auto& g : o.groups) ids.groups.push_back(gid_of(g));
  return ids;
}

void drop_privileges(const Ids& ids) {
  if (!ids.uid && !ids.gid && ids.groups.empty()) return;
  std::vector<gid_t> groups = ids.groups;
  if (groups.empty() && ids.gid) groups.push_back(*ids.gid);
  if (geteuid() == 0 && setgroups(groups.size(), groups.data()) != 0)
    throw StartupError(sys_error("setgroups"));
  if (ids.gid && setresgid(*ids.gid, *ids.gid, *ids.gid) != 0)
    throw StartupError(sys_error("setgid"));
  if (ids.uid && setresuid(*ids.uid, *ids.uid, *ids.uid) != 0)
    throw StartupError(sys_error("setuid"));
}

void raise_limits(bool core) {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (core) {
    prctl(PR_SET_DUMPABLE, 1);
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_CORE, &rl);
    }
  }
}

std::string read_password(const std::string& file) {
  std::string content;
  try {
    content = read_secret_file(file, "password file", 63);
  } catch (const std::exception& e) {
    throw StartupError(e.what());
  }
  if (content.size() < 4) throw StartupError("password file " + file + " must hold 4 to 63 bytes");
  return content.substr(0, content.find_first_of("\r\n"));
}

size_t remove_stale_temps(int dirfd) {
  size_t n = 0;
  std::vector<std::string> names;
  if (list_dir(dirfd, names) != 0) return 0;
  for (auto& name : names) {
    if (is_temp_name(name)) {
      if (remove_tree_at(dirfd, name) == 0) ++n;
      continue;
    }
    // O_NOFOLLOW|O_DIRECTORY: only real subdirectories are descended into
    int fd = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    n += remove_stale_temps(fd);
    close(fd);
  }
  return n;
}

void daemonize(const std::function<void()>& prepare, const std::function<void()>& child) {
  prepare();
  pid_t pid = fork();
  if (pid < 0) throw StartupError(sys_error("fork"));
  if (pid > 0) {
    std::fprintf(stderr, "pid       : %d\n", pid);
    _exit(0);
  }
  setsid();
  child();
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
}

}  // namespace makuo
