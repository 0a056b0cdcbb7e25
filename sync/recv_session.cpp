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
#include "sync/recv_helpers.hpp"

namespace makuo {

using namespace recv_detail;

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

}  // namespace makuo
