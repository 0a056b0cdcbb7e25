// The receiving side of a push, per entry: what we hold (version, state) against what comes
// (receive_judge), and the answer: need, same, ours stays, a conflict, a rename in place.
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
#include "sync/recv_helpers.hpp"
#include "sync/recv_session.hpp"

namespace makuo {

using namespace recv_detail;

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

bool RecvSession::owner_kept(const wire::Entry& e) const {
  return !cfg_.privileged && (local_uid(e) != geteuid() || local_gid(e) != getegid());
}

}  // namespace makuo
