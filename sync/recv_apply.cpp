// The receiving side of a push, applying: what needs no data is made at once, verified files
// are committed (Committer), hard links follow their sources, and directories get their
// metadata last, deepest first. Every change is recorded in the tree index.
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

}  // namespace makuo
