#include "sync/recv_session.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "sync/dir_digest.hpp"
#include "sync/fsops.hpp"
#include "sync/paths.hpp"

namespace makuo {
namespace {

timespec ts_of(int64_t ns) {
  timespec t;
  t.tv_sec = time_t(ns / 1000000000);
  t.tv_nsec = long(ns % 1000000000);
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    --t.tv_sec;
  }
  return t;
}

const PathVersion kNoVersion;

size_t depth(const std::string& p) {
  return size_t(std::count(p.begin(), p.end(), '/'));
}

// Under automatic propagation a directory's mtime is replicated state: changing an entry in it
// on behalf of a push must not make it look locally changed (see Committer::keep_dir_mtime).
class KeepMtime {
 public:
  // own: the descriptor is ours to close.
  KeepMtime(int dirfd, bool on, bool own = false) : fd_(dirfd), own_(own) {
    on_ = on && fstat(fd_, &st_) == 0;
  }
  KeepMtime(const KeepMtime&) = delete;
  KeepMtime& operator=(const KeepMtime&) = delete;
  ~KeepMtime() {
    if (on_) {
      timespec t[2] = {{0, UTIME_OMIT}, st_.st_mtim};
      futimens(fd_, t);
    }
    if (own_) close(fd_);
  }

 private:
  int fd_;
  bool own_, on_ = false;
  struct stat st_ {};
};

bool owner_matches(const wire::Entry& e, const struct stat& st, bool privileged) {
  return !privileged || (st.st_uid == local_uid(e) && st.st_gid == local_gid(e));
}

}  // namespace

std::string conflict_name(const std::string& path, const std::string& node, int64_t when_ns) {
  time_t t = time_t(when_ns / 1000000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char when[32];
  strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
  std::string who = node;
  std::replace(who.begin(), who.end(), '/', '_');
  std::string suffix = ".makuo-conflict-" + who + "-" + when;
  std::string leaf(leaf_of(path));
  if (leaf.size() + suffix.size() > wire::kMaxName)
    leaf.resize(wire::kMaxName > suffix.size() ? wire::kMaxName - suffix.size() : 0);
  return join(parent_of(path), leaf + suffix);
}

RecvSession::RecvSession(wire::NodeId self, std::string sender_name, Endpoint from, uint32_t sid,
                         const ReceiverConfig& cfg, Committer& committer, Worker& worker,
                         RecvStats& stats, TimePoint now)
    : self_(self),
      sender_name_(std::move(sender_name)),
      from_(from),
      sid_(sid),
      cfg_(cfg),
      committer_(committer),
      worker_(worker),
      stats_(stats),
      last_activity_(now) {}

RecvSession::~RecvSession() {
  // Whatever did not complete leaves nothing behind.
  for (auto& [idx, f] : files_)
    if (f.data.fd() >= 0 && f.dir) unlinkat(f.dir.get(), f.tmp.c_str(), 0);
  give(held_);
}

bool RecvSession::take(size_t n) {
  if (cfg_.budget && !cfg_.budget->take(n)) return false;
  held_ += n;
  return true;
}

void RecvSession::give(size_t n) {
  n = std::min(n, held_);
  held_ -= n;
  if (cfg_.budget) cfg_.budget->give(n);
}

bool RecvSession::account(RecvFile& f) {
  size_t now = sizeof(RecvFile) - sizeof(FileAssembly) + f.data.memory();
  if (now > f.held && !take(now - f.held)) return false;
  if (now < f.held) give(f.held - now);
  f.held = now;
  return true;
}

void RecvSession::refuse(uint32_t idx) {
  reports_.push_back({idx, wire::Code::Failed, ENOMEM});
  ++stats_.refused_memory;
  if (!refused_logged_)
    spdlog::warn(
        "push from {}: entries refused from #{} on: the memory for receiving pushes ({} MiB in "
        "all, --recv-memory) is used up",
        sender_name_, idx, cfg_.budget ? cfg_.budget->limit() >> 20 : 0);
  refused_logged_ = true;
}

void RecvSession::drop_file(uint32_t idx) {
  auto it = files_.find(idx);
  if (it == files_.end()) return;
  if (it->second.data.fd() >= 0 && it->second.dir)
    unlinkat(it->second.dir.get(), it->second.tmp.c_str(), 0);
  give(it->second.held);
  files_.erase(it);
}

int RecvSession::make_dir(std::string_view rel, bool replace_symlink, mode_t leaf_mode) {
  std::vector<std::string> created;
  // The directory the first new one is made in keeps its mtime (see KeepMtime).
  std::optional<KeepMtime> keep;
  if ((flags_ & wire::kAuto) && !rel.empty()) {
    std::string_view up = parent_of(rel);
    struct stat st;
    while (lstat_beneath(cfg_.basefd, rel, st) != 0 && !up.empty() &&
           lstat_beneath(cfg_.basefd, up, st) != 0)
      up = parent_of(up);
    if (lstat_beneath(cfg_.basefd, rel, st) != 0) {
      int ufd = open_beneath(cfg_.basefd, up, O_RDONLY | O_DIRECTORY);
      if (ufd >= 0) keep.emplace(ufd, true, true);
    }
  }
  int fd = ensure_dir(cfg_.basefd, rel, replace_symlink, leaf_mode, &created);
  // Made on behalf of this push, not changed here: recorded with no version of their own (the
  // sender's, when its entry for them comes, descends from that), and not sent back.
  for (auto& d : created) applied(d, &kNoVersion);
  made_dirs_.insert(made_dirs_.end(), created.begin(), created.end());
  return fd;
}

uint64_t RecvSession::tick() const {
  return cfg_.clock ? cfg_.clock->tick() : uint64_t(realtime_ns());
}

Held RecvSession::held(const std::string& path, const struct stat* st) {
  // An msync push overrides whatever we did: what it descends from is what we recorded.
  bool recorded_only = !(flags_ & wire::kAuto);
  Held h;
  if (st) {
    h.state = entry_from_stat(*st, path);
    if (S_ISLNK(st->st_mode)) {
      Fd d(open_beneath(cfg_.basefd, parent_of(path), O_RDONLY | O_DIRECTORY));
      std::string t(size_t(st->st_size) + 2, '\0');
      ssize_t n =
          d ? readlinkat(d.get(), std::string(leaf_of(path)).c_str(), t.data(), t.size()) : -1;
      if (n >= 0) h.state->link = t.substr(0, size_t(n));
    }
    if (const IndexEntry* ie = cfg_.index ? cfg_.index->find(path) : nullptr;
        ie && S_ISREG(st->st_mode) && same_state(*ie, *st))
      h.state->hash = ie->hash;
  }
  if (cfg_.index)
    h.version = recorded_only ? cfg_.index->version_at(path)
                              : cfg_.index->local_version(path, st, cfg_.self, tick());
  return h;
}

JudgeContext RecvSession::judge_context() const {
  JudgeContext c;
  c.self = cfg_.self;
  c.authoritative = !(flags_ & wire::kAuto);
  c.privileged = cfg_.privileged;
  c.local_owner = [](const wire::Entry& e) {
    return std::pair<uint32_t, uint32_t>(local_uid(e), local_gid(e));
  };
  return c;
}

Judgement RecvSession::judge_entry(uint32_t idx, Held& h) {
  const wire::Entry& e = entry(idx);
  if (needs_local_hash(e, h)) {
    h.state->hash = content_hash_beneath(cfg_.basefd, e.path);
    // Rewritten here within the tick of the version the index recorded (same size and mtime,
    // other bytes): a change of ours, not yet recorded.
    const IndexEntry* ie = cfg_.index ? cfg_.index->find(e.path) : nullptr;
    if (ie && ie->hash && h.state->hash && *ie->hash != *h.state->hash)
      h.version = bump(h.version, cfg_.self, tick());
  }
  return judge(e, h, judge_context());
}

wire::Code RecvSession::settle(uint32_t idx, const Judgement& j) {
  const wire::Entry& e = entry(idx);
  if (j.verdict == Verdict::Keep) {
    if (j.push_back) send_back(e.path);
    return wire::Code::Newer;
  }
  // Same: the state is there already; the version we hold may now be another.
  if (!dry() && cfg_.index && j.result != cfg_.index->version_at(e.path))
    applied(e.path, &j.result, e.kind == wire::Kind::File ? e.hash : std::nullopt);
  if (j.push_back) send_back(e.path);
  return wire::Code::Same;
}

wire::Code RecvSession::decide(uint32_t idx, uint16_t& err) {
  const wire::Entry& e = entry(idx);
  if (cfg_.readonly) return wire::Code::ReadOnly;
  bool bad = !valid_relpath(e.path) || (e.kind == wire::Kind::HardLink && !valid_relpath(e.link)) ||
             (e.kind == wire::Kind::Symlink && (e.link.empty() || e.link.size() > wire::kMaxPath ||
                                                e.link.find('\0') != std::string::npos));
  if (bad) {
    err = EINVAL;
    return wire::Code::Failed;
  }
  if (flags_ & wire::kDsync) return wire::Code::Same;
  if (flags_ & wire::kDigest) {
    if (e.kind != wire::Kind::Dir || !e.hash) return wire::Code::CheckNg;
    digest_later(idx);
    return wire::Code::Unknown;
  }
  struct stat st;
  int lerr = lstat_beneath(cfg_.basefd, e.path, st);
  bool exists = lerr == 0;
  // ELOOP: a directory on the way is a symlink here; we never write or delete through one.
  if (lerr && lerr != ENOENT && lerr != ENOTDIR) {
    err = uint16_t(lerr);
    return wire::Code::Failed;
  }
  if (flags_ & wire::kCheck) {
    if (!exists) {
      err = ENOENT;
      return wire::Code::Failed;
    }
    if (!S_ISREG(st.st_mode)) {
      err = EINVAL;
      return wire::Code::Failed;
    }
    if (!e.hash) return wire::Code::CheckNg;
    check_later(idx);
    return wire::Code::Unknown;
  }
  if (flags_ & wire::kAuto) judged_[idx] = exists ? stamp_of(st) : FileStamp{};
  if (e.kind == wire::Kind::HardLink) {
    // A second name of a file in this (msync) push: linked to our copy of the source, and that
    // copy is not about to be replaced.
    results_[idx] = judge(e, held(e.path, exists ? &st : nullptr), judge_context()).result;
    auto si = file_idx_.find(e.link);
    if (si != file_idx_.end() && entries_.at(si->second).code != wire::Code::Same)
      return wire::Code::Need;
    struct stat src;
    if (exists && S_ISREG(st.st_mode) && lstat_beneath(cfg_.basefd, e.link, src) == 0 &&
        src.st_ino == st.st_ino && src.st_dev == st.st_dev)
      return wire::Code::Same;
    return wire::Code::Need;
  }
  Held h = held(e.path, exists ? &st : nullptr);
  Judgement j = judge_entry(idx, h);
  if (j.verdict != Verdict::Apply) return settle(idx, j);
  results_[idx] = j.result;
  if (j.conflict && j.lost_here) note_conflict(idx, j, h, exists ? &st : nullptr);
  if (!e.from.empty() && !dry() && try_rename(idx, exists, st) == 0) {
    lstat_beneath(cfg_.basefd, e.path, st);
    exists = true;
    if (e.kind == wire::Kind::File) {
      // Same size and mtime as the sender's: ours now, once mode and owner are right.
      Fd f(open_beneath(cfg_.basefd, e.path, O_RDONLY));
      if (!f) return wire::Code::Need;
      if (int merr = apply_meta_fd(f.get(), e)) {
        err = uint16_t(merr);
        return wire::Code::Failed;
      }
      applied(e.path, &results_[idx], e.hash);
      return owner_kept(e) ? wire::Code::DoneOwnerKept : wire::Code::Done;
    }
  }
  switch (e.kind) {
    case wire::Kind::Absent: {
      if (!exists) {  // nothing to delete: the deletion is what we know of the path now
        if (!dry()) applied(e.path, &results_[idx]);
        return wire::Code::Same;
      }
      if (dry()) return wire::Code::Deleted;
      int dfd = open_beneath(cfg_.basefd, parent_of(e.path), O_RDONLY | O_DIRECTORY);
      if (dfd < 0) {
        err = uint16_t(-dfd);
        return wire::Code::Failed;
      }
      Fd d(dfd);
      std::string leaf(leaf_of(e.path));
      KeepMtime keep(dfd, flags_ & wire::kAuto);
      if ((flags_ & wire::kAuto) && S_ISDIR(st.st_mode)) {
        // A directory removed elsewhere: what was put in it here meanwhile (not deleted by the
        // same push, which lists its contents first) keeps it, as a directory made again on
        // top of that deletion.
        if (unlinkat(dfd, leaf.c_str(), AT_REMOVEDIR) != 0) {
          if (errno != ENOTEMPTY && errno != EEXIST) {
            err = uint16_t(errno);
            return wire::Code::Failed;
          }
          if (cfg_.index) {
            PathVersion v{VersionVector::merge(h.version.vv, e.version.vv), e.version.origin};
            cfg_.index->note_applied(e.path, &st, bump(v, cfg_.self, tick()), std::nullopt,
                                     realtime_ns());
          }
          send_back(e.path);
          return wire::Code::Newer;
        }
      } else if (auto c = conflicts_.find(idx); c != conflicts_.end()) {
        std::string copy = c->second.copy;
        if (!copy.empty() && renameat(dfd, leaf.c_str(), dfd, copy.c_str()) != 0) copy.clear();
        if (copy.empty() && unlinkat(dfd, leaf.c_str(), 0) != 0) {
          err = uint16_t(errno);
          return wire::Code::Failed;
        }
        report_conflict(idx, copy);
      } else if (int rerr = remove_tree_at(dfd, leaf)) {
        err = uint16_t(rerr);
        return wire::Code::Failed;
      }
      applied(e.path, &results_[idx]);
      return wire::Code::Deleted;
    }
    case wire::Kind::File: {
      // The same content (a chmod, chown or touch elsewhere): the metadata is applied in place.
      if (exists && S_ISREG(st.st_mode) && !conflicts_.count(idx) && h.state->hash && e.hash &&
          *h.state->hash == *e.hash && uint64_t(st.st_size) == e.size && !dry()) {
        Fd f(open_beneath(cfg_.basefd, e.path, O_RDONLY | O_NOFOLLOW));
        if (f && apply_meta_fd(f.get(), e) == 0) {
          applied(e.path, &results_[idx], e.hash);
          return owner_kept(e) ? wire::Code::DoneOwnerKept : wire::Code::Done;
        }
      }
      // Refuse at once what cannot fit (this also bounds the block bitmap a sender can ask for).
      struct statvfs vs;
      if (fstatvfs(cfg_.basefd, &vs) == 0 && e.size > uint64_t(vs.f_bavail) * vs.f_frsize) {
        err = ENOSPC;
        return wire::Code::Failed;
      }
      return wire::Code::Need;
    }
    default:
      if (conflicts_.count(idx) && !(exists && S_ISREG(st.st_mode))) {
        report_conflict(idx, {});  // nothing of ours to keep aside (a deletion, a symlink)
        conflicts_.erase(idx);
      }
      return wire::Code::Need;
  }
}

void RecvSession::check_later(uint32_t idx) {
  ++pending_jobs_;
  std::weak_ptr<char> life = life_;
  worker_.post([this, life, idx, basefd = cfg_.basefd, path = entry(idx).path,
                want = *entry(idx).hash]() -> Worker::Done {
    wire::Code c = wire::Code::CheckNg;
    uint16_t err = 0;
    int fd = open_beneath(basefd, path, O_RDONLY);
    Hasher h;
    if (fd < 0) {
      c = wire::Code::Failed;
      err = uint16_t(-fd);
    } else {
      Fd f(fd);
      if (int herr = hash_fd(fd, 0, h)) {
        c = wire::Code::Failed;
        err = uint16_t(herr);
      } else if (h.digest() == want) {
        c = wire::Code::CheckOk;
      }
    }
    return [this, life, idx, c, err] {
      if (life.expired()) return;
      --pending_jobs_;
      resolve(idx, c, err);
      maybe_finalize();
    };
  });
}

void RecvSession::digest_later(uint32_t idx) {
  ++pending_jobs_;
  std::weak_ptr<char> life = life_;
  worker_.post([this, life, idx, basefd = cfg_.basefd, path = entry(idx).path]() -> Worker::Done {
    auto children = std::make_shared<std::vector<wire::Entry>>();
    int err = dir_children(basefd, path, *children);
    return [this, life, idx, children, err] {
      if (life.expired()) return;
      --pending_jobs_;
      const wire::Entry& e = entry(idx);
      bool same = false;
      // Versions and tombstones come from the index, on this thread.
      if (!err) same = versioned_digest(*children, cfg_.index, e.path) == *e.hash;
      resolve(idx, same ? wire::Code::CheckOk : wire::Code::CheckNg, 0);
      maybe_finalize();
    };
  });
}

int RecvSession::try_rename(uint32_t idx, bool exists, const struct stat& st) {
  const wire::Entry& e = entry(idx);
  if (!valid_relpath(e.from) || e.from == e.path) return EINVAL;
  struct stat src;
  if (lstat_beneath(cfg_.basefd, e.from, src) != 0) return ENOENT;
  bool match = e.kind == wire::Kind::File
                   ? S_ISREG(src.st_mode) && uint64_t(src.st_size) == e.size &&
                         mtime_ns(src) == e.mtime_ns && (!exists || S_ISREG(st.st_mode))
                   : S_ISDIR(src.st_mode) && !exists;
  if (!match) return ESTALE;
  Fd from_dir(open_beneath(cfg_.basefd, parent_of(e.from), O_RDONLY | O_DIRECTORY));
  int dfd = make_dir(parent_of(e.path));
  if (!from_dir || dfd < 0) {
    if (dfd >= 0) close(dfd);
    return ENOENT;
  }
  Fd to_dir(dfd);
  KeepMtime keep_from(from_dir.get(), flags_ & wire::kAuto), keep_to(dfd, flags_ & wire::kAuto);
  if (renameat(from_dir.get(), std::string(leaf_of(e.from)).c_str(), dfd,
               std::string(leaf_of(e.path)).c_str()) != 0)
    return errno;
  if (cfg_.index) cfg_.index->move_tree(e.from, e.path);
  applied(e.from, nullptr);
  if (e.kind == wire::Kind::Dir) applied(e.path, nullptr);  // its metadata comes last
  return 0;
}

void RecvSession::applied(const std::string& path, const PathVersion* v,
                          const std::optional<wire::Hash128>& hash) {
  if (cfg_.index && v) {
    struct stat st;
    bool there = lstat_beneath(cfg_.basefd, path, st) == 0;
    cfg_.index->note_applied(path, there ? &st : nullptr, *v, hash, realtime_ns());
    if (cfg_.clock) cfg_.clock->observe(v->vv.max_counter());
  }
  if (cfg_.on_applied) cfg_.on_applied(path);
}

void RecvSession::note_conflict(uint32_t idx, const Judgement& j, const Held& h,
                                const struct stat* st) {
  (void)j;
  const wire::Entry& e = entry(idx);
  if (dry()) return;
  Conflict c;
  c.deletion = !st;
  // When our version was made: its clock, or for a version of unknown origin its mtime.
  c.when_ns = h.version.clock() ? int64_t(h.version.clock()) : st ? mtime_ns(*st) : 0;
  if (cfg_.keep_conflicts && st && S_ISREG(st->st_mode))
    c.copy = std::string(leaf_of(conflict_name(e.path, cfg_.self, c.when_ns)));
  conflicts_[idx] = c;
}

void RecvSession::report_conflict(uint32_t idx, const std::string& copy) {
  const wire::Entry& e = entry(idx);
  const Conflict& c = conflicts_.at(idx);
  std::string who = e.version.origin.empty() ? sender_name_ : e.version.origin;
  char when[32];
  time_t t = time_t(c.when_ns / 1000000000);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(when, sizeof when, "%F %T", &tm);
  std::string mine = c.deletion ? "deletion made here" : "version written here";
  std::string theirs = e.kind == wire::Kind::Absent ? "deletion" : "version";
  if (!copy.empty()) {
    spdlog::warn("conflict: {}: the {} at {} lost to a concurrent {} from {}; kept as {}",
                 shown(e.path), mine, when, theirs, who, shown(join(parent_of(e.path), copy)));
    if (cfg_.on_conflict_copy) cfg_.on_conflict_copy(join(parent_of(e.path), copy));
  } else {
    spdlog::warn(
        "conflict: {}: the {} at {} lost to a concurrent {} from {}{}", shown(e.path), mine, when,
        theirs, who,
        c.deletion || !cfg_.keep_conflicts
            ? (c.deletion || cfg_.keep_conflicts ? "" : " (--keep-conflicts keeps such versions)")
            : " (could not keep it)");
  }
  ++stats_.conflicts;
}

void RecvSession::resolve(uint32_t idx, wire::Code c, uint16_t err) {
  RecvEntries::Slot& slot = entries_.at(idx);
  if (wire::is_final(slot.code, dry())) return;
  slot.code = c;
  slot.err = err;
  reports_.push_back({idx, c, err});
  if (!wire::is_final(c, dry())) return;
  judged_.erase(idx);
  results_.erase(idx);
  need_data_.erase(idx);
  if (c == wire::Code::Failed) {
    ++stats_.files_failed;
    // The sender reports each failure to its console; this side's operator hears of the first
    // few of a push (a full disk fails every file after the first).
    if (++failures_logged_ <= kFailuresLogged)
      spdlog::warn("{} from {} not applied: {}{}", shown(entry(idx).path), sender_name_,
                   std::strerror(err ? err : EIO),
                   failures_logged_ == kFailuresLogged
                       ? " (further failures of this push: not logged)"
                       : "");
  }
  // Answered for good: only its answer is kept (directories: until their metadata is applied).
  if (slot.kind != wire::Kind::Dir) {
    --open_nondir_;
    give(entries_.release(idx));
  }
}

bool RecvSession::owner_kept(const wire::Entry& e) const {
  return !cfg_.privileged && (local_uid(e) != geteuid() || local_gid(e) != getegid());
}

int RecvSession::apply_meta_fd(int fd, const wire::Entry& e) {
  if (cfg_.privileged && fchown(fd, local_uid(e), local_gid(e)) != 0) return errno;
  if (fchmod(fd, e.mode) != 0) return errno;
  timespec times[2] = {{0, UTIME_OMIT}, ts_of(e.mtime_ns)};
  if (futimens(fd, times) != 0) return errno;
  return 0;
}

void RecvSession::commit_temp(uint32_t idx, Fd dir, std::string tmp) {
  std::string leaf(leaf_of(entry(idx).path));
  ++pending_commits_;
  PendingCommit pc;
  pc.dir = std::move(dir);
  pc.tmp = std::move(tmp);
  pc.leaf = std::move(leaf);
  pc.done = [this, idx](PendingCommit& done) {
    --pending_commits_;
    if (done.err == Committer::kJudgeAgain && judge_again(idx, done)) return;
    int err = done.err;
    const wire::Entry& e = entry(idx);
    if (err == kKeptHere) {
      resolve(idx, wire::Code::Newer, 0);
    } else if (err == kSameHere) {
      resolve(idx, wire::Code::Same, 0);
    } else if (err == Committer::kBeingWritten) {
      resolve(idx, wire::Code::Newer, 0);  // its close is recorded and pushed, and judged then
    } else if (err) {
      resolve(idx, wire::Code::Failed, uint16_t(err));
    } else {
      ++stats_.files_committed;
      if (auto c = conflicts_.find(idx); c != conflicts_.end())
        report_conflict(idx, done.kept ? c->second.copy : std::string());
      if (auto r = results_.find(idx); r != results_.end())
        applied(e.path, &r->second, e.kind == wire::Kind::File ? e.hash : std::nullopt);
      else
        applied(e.path, nullptr);
      resolve(idx, owner_kept(e) ? wire::Code::DoneOwnerKept : wire::Code::Done, 0);
    }
    try_hardlinks();
    maybe_finalize();
  };
  if (flags_ & wire::kAuto) {
    pc.check_judged = true;
    pc.keep_dir_mtime = true;
    if (auto j = judged_.find(idx); j != judged_.end()) pc.judged = j->second;
  }
  if (auto c = conflicts_.find(idx); c != conflicts_.end()) pc.keep_as = c->second.copy;
  committer_.add(std::move(pc), now_);
}

bool RecvSession::judge_again(uint32_t idx, PendingCommit& done) {
  const wire::Entry& e = entry(idx);
  struct stat st;
  bool exists = lstat_beneath(cfg_.basefd, e.path, st) == 0;
  Held h = held(e.path, exists ? &st : nullptr);
  Judgement j = judge_entry(idx, h);
  spdlog::debug("{}: changed here while a version from {} was in transit; judged again: {}",
                shown(e.path), sender_name_,
                j.verdict == Verdict::Apply ? "the incoming one replaces it" : "ours stays");
  conflicts_.erase(idx);
  if (j.verdict != Verdict::Apply) {
    unlinkat(done.dir.get(), done.tmp.c_str(), 0);
    done.err = settle(idx, j) == wire::Code::Same ? kSameHere : kKeptHere;
    return false;
  }
  results_[idx] = j.result;
  if (j.conflict && j.lost_here) note_conflict(idx, j, h, exists ? &st : nullptr);
  judged_[idx] = exists ? stamp_of(st) : FileStamp{};
  commit_temp(idx, std::move(done.dir), std::move(done.tmp));
  return true;
}
int RecvSession::materialize(uint32_t idx) {
  const wire::Entry& e = entry(idx);
  int dfd = make_dir(parent_of(e.path));
  if (dfd < 0) return -dfd;
  Fd dir(dfd);
  std::string tmp = temp_name();
  timespec times[2] = {{0, UTIME_OMIT}, ts_of(e.mtime_ns)};
  KeepMtime keep(dfd, flags_ & wire::kAuto);
  switch (e.kind) {
    case wire::Kind::File: {
      int fd = openat(dfd, tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
      if (fd < 0) return errno;
      Fd f(fd);
      if (int err = apply_meta_fd(fd, e)) {
        unlinkat(dfd, tmp.c_str(), 0);
        return err;
      }
      break;
    }
    case wire::Kind::Symlink:
      if (symlinkat(e.link.c_str(), dfd, tmp.c_str()) != 0) return errno;
      if (cfg_.privileged)
        fchownat(dfd, tmp.c_str(), local_uid(e), local_gid(e), AT_SYMLINK_NOFOLLOW);
      utimensat(dfd, tmp.c_str(), times, AT_SYMLINK_NOFOLLOW);
      break;
    case wire::Kind::Fifo:
    case wire::Kind::CharDev:
    case wire::Kind::BlockDev:
      if (e.kind != wire::Kind::Fifo && !cfg_.privileged) return EPERM;
      if (mknodat(dfd, tmp.c_str(), type_bits(e.kind) | (e.mode & 07777), dev_t(e.rdev)) != 0)
        return errno;
      if (cfg_.privileged) fchownat(dfd, tmp.c_str(), local_uid(e), local_gid(e), 0);
      fchmodat(dfd, tmp.c_str(), e.mode, 0);
      utimensat(dfd, tmp.c_str(), times, 0);
      break;
    default:
      return EINVAL;
  }
  commit_temp(idx, std::move(dir), std::move(tmp));
  return 0;
}

void RecvSession::on_manifest(const wire::Manifest& m, TimePoint now) {
  if (ended_) return;
  last_activity_ = now;
  now_ = now;
  if (!have_total_) {
    have_total_ = true;
    total_ = m.total;
    flags_ = m.flags;
    block_size_ = m.block_size;
  }
  if (m.total != total_ || m.flags != flags_ || m.block_size != block_size_) return;
  if (m.first == 0 && (flags_ & wire::kDsync)) {
    root_ = m.root;
    deletion_ = m.deletion;
    for (auto& x : m.excludes) excludes_.add(x);
  }
  if (m.first > manifest_end_ && gaps_.files.size() < 64) {
    gaps_.files.push_back({manifest_end_, {}});  // an earlier chunk was lost: ask for it now
  }
  manifest_end_ = std::max<uint32_t>(manifest_end_, m.first + uint32_t(m.entries.size()));
  for (uint32_t k = 0; k < m.entries.size(); ++k) {
    uint32_t idx = m.first + k;
    if (entries_.has(idx)) {
      const RecvEntries::Slot& slot = entries_.at(idx);
      reports_.push_back({idx, slot.code, slot.err});  // our answer was lost: repeat it
      continue;
    }
    const wire::Entry& in = m.entries[k];
    // What this entry keeps here until it is answered for good, and what naming it for later
    // look-ups costs (hard link sources, what a dsync keeps).
    size_t need = entries_.cost(idx, in) + (in.linked ? in.path.size() + 64 : 0) +
                  (flags_ & wire::kDsync ? 2 * sizeof(uint64_t) : 0);
    if (!take(need)) {
      refuse(idx);
      continue;
    }
    entries_.add(idx, in).late = data_seen_upto_ > idx;
    ++received_;
    const wire::Entry& e = entry(idx);
    if (e.kind != wire::Kind::Dir) ++open_nondir_;
    if (e.linked && e.kind == wire::Kind::File) file_idx_[e.path] = idx;
    if (flags_ & wire::kDsync) sender_keys_.push_back(path_key(e.path));
    uint16_t err = 0;
    wire::Code c = decide(idx, err);
    if (c == wire::Code::Unknown) continue;  // answered when its job is done
    if (c != wire::Code::Need || dry()) {
      resolve(idx, c, err);
      continue;
    }
    entries_.at(idx).code = wire::Code::Need;
    reports_.push_back({idx, c, 0});
    switch (e.kind) {
      case wire::Kind::File:
        if (e.size == 0) {
          if (int merr = materialize(idx)) resolve(idx, wire::Code::Failed, uint16_t(merr));
        } else if (int derr = make_dir(parent_of(e.path)); derr < 0) {
          resolve(idx, wire::Code::Failed, uint16_t(-derr));
        } else {
          close(derr);
          need_data_.insert(idx);
        }
        break;
      case wire::Kind::Dir:
        // Its own mode from the start (never more open than that), and ours to write into.
        if (int dfd = make_dir(e.path, true, (e.mode & 0777) | S_IRWXU); dfd < 0) {
          resolve(idx, wire::Code::Failed, uint16_t(-dfd));
        } else {
          close(dfd);
          dirs_.push_back(idx);
        }
        break;
      case wire::Kind::HardLink:
        hardlinks_.push_back(idx);
        break;
      default:
        if (int merr = materialize(idx)) resolve(idx, wire::Code::Failed, uint16_t(merr));
    }
  }
  try_hardlinks();
  if (flags_ & wire::kDsync) {
    if (received_ == total_ && !dsync_ran_) run_dsync();
  } else {
    maybe_finalize();
  }
}

int RecvSession::start_file(uint32_t idx, RecvFile& f) {
  const wire::Entry& e = entry(idx);
  int dfd = make_dir(parent_of(e.path));
  if (dfd < 0) return -dfd;
  f.dir = Fd(dfd);
  f.tmp = temp_name();
  KeepMtime keep(dfd, flags_ & wire::kAuto);
  int fd = openat(dfd, f.tmp.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  f.data.attach(Fd(fd));
  return 0;
}

void RecvSession::on_data(const wire::Data& d, TimePoint now) {
  if (ended_) return;
  last_activity_ = now;
  now_ = now;
  if (d.coded) return on_coded(d, now);
  if (d.idx < total_) data_seen_upto_ = std::max(data_seen_upto_, d.idx + 1);
  // Only files still waiting for blocks: a late duplicate must not start a second copy.
  if (!need_data_.count(d.idx)) return;
  const wire::Entry& e = entry(d.idx);
  if (e.kind != wire::Kind::File || d.offset % block_size_ != 0 || d.offset >= e.size) return;
  uint64_t block = d.offset / block_size_;
  if (d.payload.size() != std::min<uint64_t>(block_size_, e.size - d.offset)) return;
  auto [it, fresh] = files_.try_emplace(d.idx, e.size, block_size_);
  RecvFile& f = it->second;
  if (fresh) {
    int err = account(f) ? start_file(d.idx, f) : ENOMEM;
    if (err) {
      drop_file(d.idx);
      resolve(d.idx, wire::Code::Failed, uint16_t(err));
      return;
    }
  }
  uint64_t expected = f.data.next_expected(), written = 0;
  bool added = false;
  int werr = f.data.add(block, d.payload, added, written);
  stats_.bytes_written += written;
  if (!werr && !added) {
    ++stats_.dup_blocks;
    return;
  }
  if (!werr && !account(f)) werr = ENOMEM;  // a new page of its block bitmap
  if (werr) {
    drop_file(d.idx);
    resolve(d.idx, wire::Code::Failed, uint16_t(werr));
    return;
  }
  // Blocks that came before the file's entry are asked for at the next poll, not as a stream
  // gap: the sender takes stream gaps for what its rate costs, and one lost manifest chunk
  // would have cut the rate of a push to a fifth for a few hundred milliseconds.
  bool before_entry = fresh && entries_.at(d.idx).late;
  if (block > expected && !before_entry && gaps_.files.size() < 64)
    gaps_.files.push_back({d.idx, {{uint32_t(expected), uint32_t(block - expected)}}});
  if (d.last) f.data.set_hash(d.hash);
  if (f.data.complete()) complete_file(d.idx);
}

void RecvSession::on_coded(const wire::Data& d, TimePoint now) {
  if (!need_data_.count(d.idx)) return;
  auto it = files_.find(d.idx);
  if (it == files_.end()) return;  // nothing here yet to rebuild from
  if (d.offset % block_size_ != 0) return;
  uint64_t missing = 0;
  int err = 0;
  switch (it->second.data.rebuild(d.offset / block_size_, d.coded, d.payload, missing, coded_buf_,
                                  err)) {
    case FileAssembly::Rebuild::Rebuilt:
      ++stats_.coded_rebuilt;
      on_data(wire::Data{d.sid, d.idx, missing * block_size_, false, {}, coded_buf_}, now);
      return;
    case FileAssembly::Rebuild::Nothing:
      ++stats_.dup_blocks;
      return;
    case FileAssembly::Rebuild::Useless:
      return;
    case FileAssembly::Rebuild::Failed:
      drop_file(d.idx);
      resolve(d.idx, wire::Code::Failed, uint16_t(err));
      return;
  }
}

void RecvSession::complete_file(uint32_t idx) {
  FileAssembly& f = files_.at(idx).data;
  const wire::Entry& e = entry(idx);
  uint64_t written = 0;
  int ferr = f.flush(written);
  stats_.bytes_written += written;
  if (ferr) return verified(idx, ferr);
  need_data_.erase(idx);  // nothing more is written to it: the worker may read it
  if (f.hashed_upto() >= e.size)
    return verified(idx, f.hasher().digest() == f.hash() ? 0 : EBADMSG);
  // Blocks came out of order (repairs): what follows the first gap is hashed on the worker,
  // not here, however large the file.
  ++pending_jobs_;
  std::weak_ptr<char> life = life_;
  worker_.post([this, life, idx, fd = f.fd(), from = f.hashed_upto(), hasher = &f.hasher(),
                want = f.hash()]() -> Worker::Done {
    int err = hash_fd(fd, from, *hasher);
    if (!err && hasher->digest() != want) err = EBADMSG;
    return [this, life, idx, err] {
      if (life.expired()) return;
      --pending_jobs_;
      verified(idx, err);
      maybe_finalize();
    };
  });
}

void RecvSession::verified(uint32_t idx, int err) {
  RecvFile& f = files_.at(idx);
  const wire::Entry& e = entry(idx);
  if (!err) err = apply_meta_fd(f.data.fd(), e);
  if (err) {  // EBADMSG: the whole-file hash does not match
    drop_file(idx);
    resolve(idx, wire::Code::Failed, uint16_t(err));
    return;
  }
  Fd dir = std::move(f.dir);
  std::string tmp = std::move(f.tmp);
  give(f.held);
  files_.erase(idx);  // closes the temporary: its data is flushed by the batch's syncfs
  commit_temp(idx, std::move(dir), std::move(tmp));
}

void RecvSession::try_hardlinks() {
  for (auto it = hardlinks_.begin(); it != hardlinks_.end();) {
    uint32_t idx = *it;
    const wire::Entry& e = entry(idx);
    auto src = file_idx_.find(e.link);
    int err = 0;
    if (src == file_idx_.end()) {
      if (received_ < total_) {  // its source may still be on the way
        ++it;
        continue;
      }
      err = ENOENT;
    } else {
      wire::Code sc = entries_.at(src->second).code;
      if (sc == wire::Code::Need || sc == wire::Code::Unknown) {  // source not committed yet
        ++it;
        continue;
      }
      if (sc == wire::Code::Failed)
        err = entries_.at(src->second).err ? entries_.at(src->second).err : EIO;
    }
    if (!err) {
      Fd sdir(open_beneath(cfg_.basefd, parent_of(e.link), O_RDONLY | O_DIRECTORY));
      int dfd = make_dir(parent_of(e.path));
      Fd dir(dfd);
      std::string tmp = temp_name();
      std::optional<KeepMtime> keep;
      if (dfd >= 0) keep.emplace(dfd, flags_ & wire::kAuto);
      if (!sdir || dfd < 0) {
        err = !sdir ? ENOENT : -dfd;
      } else if (linkat(sdir.get(), std::string(leaf_of(e.link)).c_str(), dfd, tmp.c_str(), 0) !=
                 0) {
        err = errno;
      } else {
        commit_temp(idx, std::move(dir), tmp);
      }
    }
    if (err) resolve(idx, wire::Code::Failed, uint16_t(err));
    it = hardlinks_.erase(it);
  }
}

void RecvSession::maybe_finalize() {
  if (finalized_ || !have_total_ || received_ < total_ || open_nondir_ > 0) return;
  finalized_ = true;
  if (flags_ & wire::kDigest) return;  // a comparison: nothing to apply
  // Directory metadata last, deepest first, so that committing their contents cannot undo it.
  // Those taken, and (msync) those that were the same before their contents changed them.
  std::vector<uint32_t> dirs;
  for (uint32_t i = 0; i < total_; ++i)
    if (entries_.at(i).kind == wire::Kind::Dir &&
        (entries_.at(i).code == wire::Code::Need ||
         (entries_.at(i).code == wire::Code::Same && !(flags_ & wire::kAuto))))
      dirs.push_back(i);
  std::stable_sort(dirs.begin(), dirs.end(), [&](uint32_t a, uint32_t b) {
    return depth(entry(a).path) > depth(entry(b).path);
  });
  for (uint32_t idx : dirs) {
    const wire::Entry& e = entry(idx);
    if (dry()) continue;
    int fd = open_beneath(cfg_.basefd, e.path, O_RDONLY | O_DIRECTORY);
    int err = fd < 0 ? -fd : 0;
    if (!err) {
      struct stat st;
      fstat(fd, &st);
      if (!((st.st_mode & 07777) == e.mode && mtime_ns(st) == e.mtime_ns &&
            owner_matches(e, st, cfg_.privileged)))
        err = apply_meta_fd(fd, e);
      auto r = results_.find(idx);
      if (!err) applied(e.path, r != results_.end() ? &r->second : nullptr);
      close(fd);
    }
    if (entries_.at(idx).code == wire::Code::Need) {
      if (err) {
        resolve(idx, wire::Code::Failed, uint16_t(err));
      } else {
        resolve(idx, wire::Code::Done, 0);
      }
    }
  }
  open_made_dirs(dirs);
}

void RecvSession::open_made_dirs(const std::vector<uint32_t>& given) {
  // Those the push carries no entry for get a directory's usual mode (its entry, in a later
  // push, brings the sender's).
  if (made_dirs_.empty()) return;
  std::unordered_set<std::string_view> carried;
  for (uint32_t i : given) carried.insert(entry(i).path);
  for (auto& d : made_dirs_) {
    // Another push may have brought its entry meanwhile (a version, and the sender's mode).
    if (carried.count(d) || (cfg_.index && cfg_.index->version_at(d) != kNoVersion)) continue;
    Fd f(open_beneath(cfg_.basefd, d, O_RDONLY | O_DIRECTORY));
    struct stat st;
    if (!f || fstat(f.get(), &st) != 0 || (st.st_mode & 07777) != 0700) continue;
    // Recorded as it is now: not a change made here.
    if (fchmod(f.get(), 0755) == 0) applied(d, &kNoVersion);
  }
  made_dirs_.clear();
}

PathVersion RecvSession::deleted_version(const std::string& path) {
  struct stat st;
  bool there = lstat_beneath(cfg_.basefd, path, st) == 0;
  PathVersion mine = cfg_.index
                         ? cfg_.index->local_version(path, there ? &st : nullptr, cfg_.self, tick())
                         : PathVersion{};
  return {VersionVector::merge(mine.vv, deletion_.vv), deletion_.origin};
}

uint64_t RecvSession::path_key(std::string_view path) {
  return XXH3_64bits(path.data(), path.size());
}

bool RecvSession::sent(std::string_view path) const {
  return std::binary_search(sender_keys_.begin(), sender_keys_.end(), path_key(path));
}

void RecvSession::run_dsync() {
  dsync_ran_ = true;
  std::sort(sender_keys_.begin(), sender_keys_.end());
  std::vector<wire::DeleteItem> items;
  bool recursive = flags_ & wire::kRecursive;
  // Post-order walk of our own tree under root; delete what the sender lacks.
  std::function<void(int, const std::string&, int)> walk = [&](int dirfd, const std::string& dir,
                                                               int level) {
    std::vector<std::string> names;
    if (list_dir(dirfd, names) != 0) return;
    for (auto& n : names) {
      if (is_temp_name(n)) continue;
      std::string path = join(dir, n);
      struct stat st;
      if (fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      bool is_dir = S_ISDIR(st.st_mode);
      if (excludes_.match(cfg_.base_path, path, is_dir)) continue;
      bool keep = sent(path);
      if (is_dir && keep && (recursive || level == 0)) {
        int sub = openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
          walk(sub, path, level + 1);
          close(sub);
        }
      }
      if (keep) continue;
      PathVersion v = deleted_version(path);
      int err = dry() ? 0 : remove_tree_at(dirfd, n);
      if (!dry() && !err) applied(path, &v);
      items.push_back({uint16_t(err), path});
    }
  };
  if (!cfg_.readonly && (root_.empty() || valid_relpath(root_))) {
    if (!root_.empty() && !sent(root_)) {
      struct stat st;
      if (lstat_beneath(cfg_.basefd, root_, st) == 0 &&
          !excludes_.match(cfg_.base_path, root_, S_ISDIR(st.st_mode))) {
        PathVersion v = deleted_version(root_);
        int pfd = open_beneath(cfg_.basefd, parent_of(root_), O_RDONLY | O_DIRECTORY);
        int err = pfd < 0 ? -pfd : (dry() ? 0 : remove_tree_at(pfd, std::string(leaf_of(root_))));
        if (pfd >= 0) close(pfd);
        if (!dry() && !err) applied(root_, &v);
        items.push_back({uint16_t(err), root_});
      }
    } else {
      int rfd = open_beneath(cfg_.basefd, root_, O_RDONLY | O_DIRECTORY);
      if (rfd >= 0) {
        walk(rfd, root_, 0);
        close(rfd);
      }
    }
  }
  // Pack into datagram-sized chunks; the last one says "final".
  wire::DeleteReport cur{sid_, 0, false, {}};
  size_t used = 0;
  for (auto& it : items) {
    if (!cur.items.empty() && used + 4 + it.path.size() > 1200) {
      del_chunks_.push_back(cur);
      cur = wire::DeleteReport{sid_, uint32_t(del_chunks_.size()), false, {}};
      used = 0;
    }
    used += 4 + it.path.size();
    cur.items.push_back(it);
  }
  cur.final = true;
  del_chunks_.push_back(cur);
}

void RecvSession::on_delete_ack(const wire::DeleteAck& a, TimePoint now) {
  last_activity_ = now;
  if (a.chunk == del_next_ && del_next_ < del_chunks_.size()) {
    ++del_next_;
    del_sent_at_ = {};
  }
}

void RecvSession::on_poll(const wire::Poll& p, TimePoint now, Transport& net) {
  if (ended_) return;
  last_activity_ = now;
  now_ = now;
  // Gaps in what the sender has sent once: whole files below sent_upto, and the blocks of the
  // file in flight below sent_offset (so that a large file is repaired while it streams).
  // Files below lowest_open are settled for every target in the sender's view: one we still
  // wait for was given up by the sender (it changed while being sent; a later push brings it).
  // Without this, this push's directories would never be finalized and answered.
  std::vector<uint32_t> abandoned;
  for (uint32_t idx : need_data_) {
    if (idx >= p.lowest_open) break;
    abandoned.push_back(idx);
  }
  for (uint32_t idx : abandoned) {
    drop_file(idx);
    resolve(idx, wire::Code::Failed, ESTALE);
  }
  if (!abandoned.empty()) maybe_finalize();
  wire::Nack nack{sid_, p.seq, {}};
  size_t used = wire::kHeaderSize + 10;
  if (received_ < total_) {
    // Manifest entries the sender has moved past that never arrived.
    while (next_missing_ < total_ && entries_.has(next_missing_)) ++next_missing_;
    if (next_missing_ < total_ && next_missing_ <= p.sent_upto)
      nack.files.push_back({next_missing_, {}});
  }
  for (uint32_t idx : need_data_) {
    if (idx > p.sent_upto || used > 1200) break;
    const wire::Entry& e = entry(idx);
    uint64_t nb = (e.size + block_size_ - 1) / block_size_;
    if (idx == p.sent_upto) nb = std::min<uint64_t>(nb, p.sent_offset / block_size_);
    if (nb == 0) break;
    wire::NackFile nf{idx, {}};
    auto it = files_.find(idx);
    if (it == files_.end()) {
      nf.ranges.push_back({0, uint32_t(nb)});
    } else {
      const RecvFile& f = it->second;
      uint64_t b = f.data.next_missing(0, nb);
      while (b < nb && nf.ranges.size() < 64) {
        uint64_t e = std::min(f.data.next_present(b, nb), b + UINT32_MAX);
        nf.ranges.push_back({uint32_t(b), uint32_t(e - b)});
        b = f.data.next_missing(e, nb);
      }
      if (nf.ranges.empty()) {
        if (idx == p.sent_upto) break;  // nothing missing yet in the file in flight
        // Every block is here but the last one's hash was never seen: ask for the last block.
        nf.ranges.push_back({uint32_t(nb - 1), 1});
      }
    }
    used += 6 + nf.ranges.size() * 8;
    nack.files.push_back(std::move(nf));
  }
  if (!nack.files.empty()) {
    wire::Bytes b;
    wire::encode(b, self_, nack);
    net.send(from_, b);
  }
  // Repeat final answers the sender may have lost, from where it is still waiting.
  uint32_t end = std::min(manifest_end_, std::min(total_, p.lowest_open + 65536));
  for (uint32_t i = p.lowest_open, n = 0; i < end && n < 150; ++i) {
    if (!entries_.has(i)) continue;
    const RecvEntries::Slot& slot = entries_.at(i);
    if (wire::is_final(slot.code, dry())) {
      reports_.push_back({i, slot.code, slot.err});
      ++n;
    } else if (slot.kind != wire::Kind::Dir) {
      break;
    }
  }
  // Directories are answered after everything else; repeat those answers in turns.
  if (finalized_ && !dirs_.empty()) {
    for (size_t n = 0; n < std::min<size_t>(dirs_.size(), 150); ++n) {
      uint32_t i = dirs_[dir_resend_++ % dirs_.size()];
      reports_.push_back({i, entries_.at(i).code, entries_.at(i).err});
    }
  }
  if (reports_.empty()) reports_.push_back({0, wire::Code::Unknown, 0});  // "still here"
  flush(now, net);
}

void RecvSession::flush(TimePoint now, Transport& net) {
  now_ = now;
  if (!gaps_.files.empty()) {
    gaps_.sid = sid_;
    gaps_.poll_seq = wire::kStreamGap;
    wire::Bytes b;
    wire::encode(b, self_, gaps_);
    net.send(from_, b);
    gaps_.files.clear();
  }
  if (!reports_.empty()) {
    wire::Report r{sid_, {}};
    for (size_t i = 0; i < reports_.size(); ++i) {
      r.items.push_back(reports_[i]);
      if (r.items.size() == 190 || i + 1 == reports_.size()) {
        wire::Bytes b;
        wire::encode(b, self_, r);
        net.send(from_, b);
        r.items.clear();
      }
    }
    reports_.clear();
  }
  if (del_next_ < del_chunks_.size() && now - del_sent_at_ >= 200ms) {
    wire::Bytes b;
    wire::encode(b, self_, del_chunks_[del_next_]);
    net.send(from_, b);
    del_sent_at_ = now;
  }
}

std::string RecvSession::describe() const {
  return "from=" + from_.str() + " sid=" + std::to_string(sid_) +
         " entries=" + std::to_string(received_) + "/" + std::to_string(total_) +
         " open_files=" + std::to_string(files_.size()) +
         " waiting=" + std::to_string(need_data_.size());
}

}  // namespace makuo
