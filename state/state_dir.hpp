// The state directory of one base directory, where makuosan and makuofs meet:
//
//   STATE/             root's (0755); never written by the daemon's user
//   STATE/journal/     the change journal: segments (makuofs, --watch) and the cursor
//   STATE/daemon/      the tree index (index, index.log) and last-contact
//   STATE/notify/      the mounts' cache invalidation sockets
//
// The three subdirectories belong to the daemon's user (-u). Root code (makuofs always,
// makuosan before it drops its privileges) opens the state directory with no symlink on the way
// and only ever works below it through descriptors, never following a name it finds there: a
// symlink the daemon's user plants in its own directories cannot make root open, create or
// chown anything else. What only the daemon's user reads and writes (the index) is opened after
// the privilege drop.
#pragma once
#include <sys/types.h>

#include <string>

namespace makuo::state {

inline constexpr const char* kJournal = "journal";
inline constexpr const char* kDaemon = "daemon";
inline constexpr const char* kNotify = "notify";
inline constexpr const char* kIndex = "index";               // in kDaemon, with kIndex + ".log"
inline constexpr const char* kLastContact = "last-contact";  // in kDaemon

// "/srv/www-base" -> "/var/lib/makuo/srv-www\x2dbase": where makuosan and makuofs meet when
// neither is given a state directory (systemd-escape --path style).
std::string default_path(const std::string& base_realpath);

class StateDir {
 public:
  StateDir() = default;
  ~StateDir();
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;

  // Opens path, creating what is missing (0755 directories on the way, 0700 subdirectories),
  // without following a symlink anywhere. As root with an owner: the state directory is made
  // root's, the subdirectories and what is in them owner's, and files a release before 0.2 kept
  // in the state directory itself move to their subdirectory. Returns 0 or errno; what says
  // which name failed.
  int open(const std::string& path, uid_t owner, gid_t group, std::string& what);

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }
  int journal_fd() const { return journal_; }
  int daemon_fd() const { return daemon_; }
  int notify_fd() const { return notify_; }
  std::string journal_path() const { return path_ + "/" + kJournal; }

 private:
  int sub(const char* name, uid_t owner, gid_t group, int& out, std::string& what);

  std::string path_;
  int fd_ = -1, journal_ = -1, daemon_ = -1, notify_ = -1;
};

}  // namespace makuo::state
