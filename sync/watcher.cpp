#include "sync/watcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sync/fsops.hpp"
#include "sync/paths.hpp"

namespace makuo {
namespace {

constexpr uint32_t kMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                           IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW |
                           IN_EXCL_UNLINK;

bool below_or_at(const std::string& p, const std::string& dir) {
  return p == dir || is_below(p, dir);
}

}  // namespace

Watcher::Watcher(std::string base_path, journal::Writer& out)
    : base_(std::move(base_path)), out_(out) {}

Watcher::~Watcher() {
  if (fd_ >= 0) close(fd_);
}

std::string Watcher::abs(const std::string& rel) const {
  return rel.empty() ? base_ : base_ + "/" + rel;
}

void Watcher::record(journal::Op op, const std::string& path, const std::string& to) {
  ++stats_.records;
  if (int e = out_.append({op, realtime_ns(), path, to}))
    spdlog::error("change journal: {} {} not recorded: {}", journal::to_string(op), shown(path),
                  std::strerror(e));
}

int Watcher::start() {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return errno;
  size_t failed = watch_tree("");
  if (!path_wd_.count("")) return errno ? errno : EIO;
  spdlog::info("watching {} directories below {}{}", path_wd_.size(), base_,
               failed ? " (" + std::to_string(failed) + " could not be watched)" : "");
  return 0;
}

bool Watcher::add_watch(const std::string& rel) {
  int wd = inotify_add_watch(fd_, abs(rel).c_str(), kMask);
  if (wd < 0) {
    if (errno == ENOSPC || errno == ENOMEM) {
      ++stats_.watch_failures;
      unwatched_.insert(rel);
      if (!warned_full_) {
        warned_full_ = true;
        spdlog::warn(
            "inotify watch table full at {} directories: changes below {} and others are found "
            "by a rescan every 30 s until fs.inotify.max_user_watches is raised (or use makuofs)",
            path_wd_.size(), rel.empty() ? "." : rel);
      }
    }
    return false;
  }
  auto old = wd_path_.find(wd);
  if (old != wd_path_.end() && old->second != rel) path_wd_.erase(old->second);
  wd_path_[wd] = rel;
  path_wd_[rel] = wd;
  unwatched_.erase(rel);
  stats_.watched = path_wd_.size();
  return true;
}

size_t Watcher::watch_tree(const std::string& rel) {
  if (!add_watch(rel)) return 1;
  size_t failed = 0;
  int dfd = open(abs(rel).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return 0;
  std::vector<std::string> names;
  list_dir(dfd, names);
  for (auto& n : names) {
    if (is_temp_name(n)) continue;
    struct stat st;
    if (fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      failed += watch_tree(rel.empty() ? n : rel + "/" + n);
  }
  close(dfd);
  return failed;
}

void Watcher::forget_tree(const std::string& rel) {
  for (auto it = path_wd_.lower_bound(rel); it != path_wd_.end();) {
    if (!below_or_at(it->first, rel)) {
      if (it->first.compare(0, rel.size(), rel) != 0) break;
      ++it;
      continue;
    }
    inotify_rm_watch(fd_, it->second);
    wd_path_.erase(it->second);
    it = path_wd_.erase(it);
  }
  stats_.watched = path_wd_.size();
}

void Watcher::moved_dir(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, int>> moved;
  for (auto it = path_wd_.lower_bound(from); it != path_wd_.end();) {
    if (!below_or_at(it->first, from)) {
      if (it->first.compare(0, from.size(), from) != 0) break;
      ++it;
      continue;
    }
    moved.emplace_back(to + it->first.substr(from.size()), it->second);
    it = path_wd_.erase(it);
  }
  for (auto& [p, wd] : moved) {
    path_wd_[p] = wd;
    wd_path_[wd] = p;
  }
  // Files being written below it are written under their new names now.
  std::vector<std::string> open;
  for (auto it = modified_.lower_bound(from + "/");
       it != modified_.end() && below_or_at(*it, from);) {
    open.push_back(to + it->substr(from.size()));
    it = modified_.erase(it);
  }
  modified_.insert(open.begin(), open.end());
}

void Watcher::rescan_all(const char* why) {
  spdlog::warn(
      "inotify: {}: rescanning {} (deletions made meanwhile are not seen; "
      "msync --delete -r repairs them)",
      why, base_);
  forget_tree("");
  watch_tree("");
  int dfd = open(base_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  std::vector<std::string> names;
  list_dir(dfd, names);
  close(dfd);
  for (auto& n : names)
    if (!is_temp_name(n)) record(journal::Op::Rescan, n);
}

void Watcher::on_readable(TimePoint) {
  alignas(inotify_event) char buf[64 * 1024];
  struct PendingMove {
    uint32_t cookie;
    std::string path;
    bool dir;
  };
  std::vector<PendingMove> from;
  bool overflow = false;
  for (int waited = 0;;) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) {
      // The two halves of a rename are queued one after the other by the same system call,
      // and a read can come between them: give the second half a moment before taking the
      // first for a move out of the tree (which would make the tree moved here look new).
      pollfd pf{fd_, POLLIN, 0};
      if (from.empty() || waited++ || poll(&pf, 1, 5) != 1) break;
      continue;
    }
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      ++stats_.events;
      if (ev->mask & IN_Q_OVERFLOW) {
        overflow = true;
        continue;
      }
      auto wit = wd_path_.find(ev->wd);
      if (wit == wd_path_.end()) continue;
      if (ev->mask & IN_IGNORED) {
        path_wd_.erase(wit->second);
        wd_path_.erase(wit);
        stats_.watched = path_wd_.size();
        continue;
      }
      if (ev->mask & IN_DELETE_SELF) continue;  // the parent reports the name
      std::string dir = wit->second;
      std::string name = ev->len ? std::string(ev->name) : std::string();
      if (name.empty()) continue;
      std::string path = dir.empty() ? name : dir + "/" + name;
      bool is_dir = ev->mask & IN_ISDIR;
      if (ev->mask & IN_MOVED_FROM) {
        from.push_back({ev->cookie, path, is_dir});
      } else if (ev->mask & IN_MOVED_TO) {
        auto m =
            std::find_if(from.begin(), from.end(), [&](auto& f) { return f.cookie == ev->cookie; });
        if (m != from.end()) {
          if (is_dir)
            moved_dir(m->path, path);
          else if (modified_.erase(m->path))
            modified_.insert(path);
          record(journal::Op::Rename, m->path, path);
          from.erase(m);
        } else {
          // Moved in from outside the tree: all of it is new here.
          if (is_dir) watch_tree(path);
          record(journal::Op::Rescan, path);
        }
      } else if (ev->mask & IN_CREATE) {
        if (is_dir) {
          // Watch first, then look: whatever was created before the watch is found now.
          watch_tree(path);
          record(journal::Op::Rescan, path);
        } else {
          record(journal::Op::Create, path);
        }
      } else if (ev->mask & IN_DELETE) {
        modified_.erase(path);
        record(is_dir ? journal::Op::Rmdir : journal::Op::Unlink, path);
      } else if (ev->mask & IN_CLOSE_WRITE) {
        modified_.erase(path);
        record(journal::Op::Write, path);
      } else if ((ev->mask & IN_MODIFY) && !is_dir) {
        modified_.insert(path);
      } else if (ev->mask & (IN_ATTRIB | IN_MODIFY)) {
        // A directory's IN_MODIFY is a time change that set its mtime alone (utimensat with
        // UTIME_OMIT for atime): metadata, to be judged now like any other, not a second later
        // under names a rename may have moved meanwhile.
        record(journal::Op::Setattr, path);
      }
    }
  }
  // A move whose other half is outside the tree: the name is gone from here.
  for (auto& f : from) {
    if (f.dir) forget_tree(f.path);
    record(f.dir ? journal::Op::Rmdir : journal::Op::Unlink, f.path);
  }
  if (overflow) {
    ++stats_.overflows;
    rescan_all("event queue overflowed");
  }
}

TimePoint Watcher::on_timer(TimePoint now) {
  // Files kept open for writing (logs, mmaps) are recorded about once a second.
  for (auto& p : modified_) record(journal::Op::Write, p);
  modified_.clear();
  if (!unwatched_.empty() && now >= retry_at_) {
    retry_at_ = now + 30s;
    std::set<std::string> todo = std::move(unwatched_);
    unwatched_.clear();
    for (auto& rel : todo) {
      watch_tree(rel);
      if (!rel.empty()) record(journal::Op::Rescan, rel);
    }
    if (unwatched_.empty()) warned_full_ = false;
  }
  return now + 1s;
}

}  // namespace makuo
