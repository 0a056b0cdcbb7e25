#include "sync/auto_push.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <unordered_set>

#include "sync/fsops.hpp"
#include "sync/paths.hpp"
#include "sync/push_request.hpp"
#include "sync/scan.hpp"

namespace makuo {
namespace {

constexpr Duration kEchoMemory = 10s;
constexpr size_t kEchoMax = 200000;
constexpr size_t kMaxQueued = 100000;       // read no further until a push took these
constexpr uint64_t kTieHashMax = 64 << 20;  // files up to this size carry their hash

}  // namespace

AutoPush::AutoPush(AutoPushConfig cfg, Engine& engine, journal::Reader& reader, TimePoint now)
    : cfg_(std::move(cfg)),
      eng_(engine),
      reader_(reader),
      queue_(cfg_.quiet, cfg_.max_delay),
      settle_until_(now + cfg_.settle) {}

void AutoPush::applied(const std::string& path, TimePoint now) {
  Seen s;
  struct stat st;
  if (lstat_beneath(cfg_.basefd, path, st) != 0) {
    s.absent = true;
  } else {
    s.mode = st.st_mode;
    s.size = uint64_t(st.st_size);
    s.mtime = mtime_ns(st);
    s.uid = st.st_uid;
    s.gid = st.st_gid;
  }
  echo_[path] = s;
  echo_order_.push_back({now, path});
  while (echo_order_.size() > kEchoMax) {
    echo_.erase(echo_order_.front().second);
    echo_order_.pop_front();
  }
}

void AutoPush::local_change(const std::string& path, TimePoint now) {
  journal::Record r;
  r.op = journal::Op::Create;
  r.time_ns = realtime_ns();
  r.path = path;
  queue_.add(r, now);
  forced_.insert(path);
  if (wake_) wake_();
}

bool AutoPush::is_echo(const wire::Entry& e) {
  if (echo_.empty()) return false;
  if (e.kind == wire::Kind::Absent) {
    // Our receiver removed it, or removed (or renamed away) a directory above it.
    for (std::string_view p = e.path; !p.empty(); p = parent_of(p)) {
      auto it = echo_.find(std::string(p));
      if (it != echo_.end() && it->second.absent) {
        ++stats_.echoes;
        return true;
      }
    }
    return false;
  }
  auto it = echo_.find(e.path);
  if (it == echo_.end()) return false;
  const Seen& s = it->second;
  bool same = e.kind == wire::Kind::Absent
                  ? s.absent
                  : !s.absent && (s.mode & S_IFMT) == type_bits(e.kind) &&
                        (s.mode & 07777) == e.mode && s.mtime == e.mtime_ns &&
                        (e.kind != wire::Kind::File || s.size == e.size) && s.uid == e.uid &&
                        s.gid == e.gid;
  // Kept until it expires: several records may name the path in separate pushes.
  if (same) ++stats_.echoes;
  return same;
}

std::vector<AutoPush::Observed> AutoPush::observe(const std::vector<Change>& changes, int basefd,
                                                  const std::string& base_path,
                                                  const Excludes* excludes) {
  std::vector<Observed> out(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    Observed& o = out[i];
    struct stat st;
    if (lstat_beneath(basefd, c.path, st) != 0) continue;
    o.stamp = stamp_of(st);
    if (S_ISREG(st.st_mode) && uint64_t(st.st_size) <= kTieHashMax &&
        !open_for_writing(basefd, c.path))
      o.hash = content_hash_beneath(basefd, c.path);
    if (S_ISDIR(st.st_mode) && c.subtree) {
      ScanOptions so;
      so.root = c.path;
      so.recursive = true;
      so.base_path = base_path;
      so.excludes = excludes;
      o.below = scan(basefd, so);
    }
  }
  return out;
}

std::vector<wire::Entry> AutoPush::build(const std::vector<Change>& changes,
                                         std::vector<Observed>& observed, TimePoint now) {
  std::vector<wire::Entry> renamed, present, absent;
  std::set<std::string> seen;
  int64_t now_ns = realtime_ns();
  uint64_t clock = cfg_.clock ? cfg_.clock->tick() : uint64_t(now_ns);
  auto add = [&](std::vector<wire::Entry>& to, wire::Entry e) {
    if (seen.insert(e.path).second) to.push_back(std::move(e));
  };
  // The version of e (bumped when it is not what the index recorded); false: nothing to tell.
  auto versioned = [&](wire::Entry& e) {
    return !cfg_.index || cfg_.index->note_local(e, cfg_.self, clock, now_ns);
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    Observed& o = observed[i];
    bool forced = forced_.erase(c.path) > 0;
    struct stat st;
    int err = lstat_beneath(cfg_.basefd, c.path, st);
    if (!err && stamp_of(st) != o.stamp) {
      // Changed again since the worker looked (hashed, listed): looked at again next time.
      again_.push_back(c);
      if (forced) forced_.insert(c.path);
      continue;
    }
    if (err == ENOENT || err == ENOTDIR) {
      held_.erase(c.path);
      wire::Entry e;
      e.kind = wire::Kind::Absent;
      e.path = c.path;
      e.mtime_ns = now_ns;
      if (!(forced || !is_echo(e)) || !versioned(e)) continue;
      // What was below it went with it (the source of a rename, say): receivers that hold it
      // and could not take the rename delete it too.
      if (cfg_.index)
        for (auto& [p, t] : cfg_.index->tombstones_below(e.path))
          if (p != e.path) add(absent, entry_of_tombstone(p, t));
      add(absent, std::move(e));
      continue;
    }
    if (err) {
      // ELOOP: a symlink on the way; that name is not ours to push (and never followed).
      spdlog::warn("change to {} not sent: {}", shown(c.path), std::strerror(err));
      continue;
    }
    bool dir = S_ISDIR(st.st_mode);
    if (c.path.empty()) {  // a rescan of the whole tree: what is below the base, not the base
      if (o.below) add_subtree(c.path, *o.below, present, absent, add, versioned);
      continue;
    }
    if (cfg_.excludes && cfg_.excludes->match(cfg_.base_path, c.path, dir)) continue;
    bool renamed_here = !c.from.empty() && (dir || S_ISREG(st.st_mode));
    wire::Entry e = entry_from_stat(st, c.path);
    if (S_ISLNK(st.st_mode)) {
      Fd dir(open_beneath(cfg_.basefd, parent_of(c.path), O_RDONLY | O_DIRECTORY));
      std::string target(size_t(st.st_size) + 2, '\0');
      ssize_t n = dir ? readlinkat(dir.get(), std::string(leaf_of(c.path)).c_str(), target.data(),
                                   target.size())
                      : -1;
      if (n <= 0 || size_t(n) > size_t(st.st_size)) continue;  // changed again: a later record
      target.resize(size_t(n));
      e.link = std::move(target);
    }
    if (!forced && is_echo(e)) continue;  // our receiver put it there, and what is below it
    if (S_ISREG(st.st_mode) && !forced && c.from.empty()) {
      // Still open for writing through the mount: what it holds now is half of a write. It
      // goes when the writer closes it (makuofs records that), or when the lock vanishes with
      // a mount that died: the open itself was recorded, so no write is ever left unsent.
      if (open_for_writing(cfg_.basefd, c.path)) {
        auto [h, fresh] = held_.try_emplace(c.path, now);
        if (now - h->second < kWriteHoldMax) {
          if (fresh) ++stats_.held;
          hold_.push_back(c.path);
          continue;
        }
      }
      held_.erase(c.path);
    }
    // What was at the source (and below it) is at the target now: new versions there, on top
    // of both histories, and tombstones where it was.
    if (renamed_here && cfg_.index)
      cfg_.index->rename_tree(c.from, c.path, cfg_.self, clock, now_ns);
    // Receivers tell two states of one size and mtime apart by the hash (a rewrite within one
    // mtime tick, two concurrent writes), and the index a change of content alone.
    if (S_ISREG(st.st_mode) && !e.hash) e.hash = o.hash;
    if (!versioned(e)) continue;
    if (renamed_here) {
      e.from = c.from;
      add(renamed, std::move(e));
    } else {
      add(present, std::move(e));
    }
    if (dir && o.below) add_subtree(c.path, *o.below, present, absent, add, versioned);
  }
  // Deepest first: a directory is removed after what was in it (see RecvSession: under last
  // writer wins a directory goes only when empty).
  std::stable_sort(absent.begin(), absent.end(), [](const wire::Entry& a, const wire::Entry& b) {
    return std::count(a.path.begin(), a.path.end(), '/') >
           std::count(b.path.begin(), b.path.end(), '/');
  });
  std::vector<wire::Entry> out = std::move(renamed);
  for (auto& e : present) out.push_back(std::move(e));
  for (auto& e : absent) out.push_back(std::move(e));
  return out;
}

template <class Add, class Versioned>
void AutoPush::add_subtree(const std::string& root, ScanResult& below,
                           std::vector<wire::Entry>& present, std::vector<wire::Entry>& absent,
                           Add& add, Versioned& versioned) {
  for (auto& line : below.errors) spdlog::warn("{}", line);
  std::unordered_set<std::string> listed;
  if (cfg_.index) listed.reserve(below.entries.size());
  for (auto& x : below.entries) {
    if (cfg_.index) listed.insert(x.path);
    // Changed since it was listed: its own record brings it.
    if (!still_there(cfg_.basefd, x) || is_echo(x) || !versioned(x)) continue;
    add(present, std::move(x));
  }
  if (!cfg_.index) return;
  // What the index holds below root and the listing does not was deleted here unrecorded (a
  // watch that overflowed, a journal that was full), unless it is excluded or back meanwhile.
  int64_t now_ns = realtime_ns();
  std::vector<std::string> gone;
  auto& m = cfg_.index->entries();
  for (auto it = root.empty() ? m.begin() : m.lower_bound(root + "/");
       it != m.end() && is_below(it->first, root); ++it)
    if (!listed.count(it->first)) gone.push_back(it->first);
  for (auto& p : gone) {
    struct stat st;
    int err = lstat_beneath(cfg_.basefd, p, st);
    if (err != ENOENT && err != ENOTDIR) continue;
    if (cfg_.excludes && cfg_.excludes->match(cfg_.base_path, p, false)) continue;
    wire::Entry e;
    e.kind = wire::Kind::Absent;
    e.path = p;
    e.mtime_ns = now_ns;
    if (is_echo(e) || !versioned(e)) continue;
    add(absent, std::move(e));
  }
}

void AutoPush::push() {
  auto changes = std::make_shared<std::vector<Change>>(queue_.take());
  inflight_pos_ = read_pos_;
  building_ = true;
  // Hashes and subtree listings on the worker; versions, echoes and the push here.
  eng_.worker().post([this, changes, basefd = cfg_.basefd, base = cfg_.base_path,
                      excludes = cfg_.excludes]() -> Worker::Done {
    auto observed =
        std::make_shared<std::vector<Observed>>(observe(*changes, basefd, base, excludes));
    return [this, changes, observed] {
      building_ = false;
      start(*changes, *observed, Clock::now());
      if (wake_) wake_();
    };
  });
}

void AutoPush::start(const std::vector<Change>& changes, std::vector<Observed>& observed,
                     TimePoint now) {
  std::vector<wire::Entry> entries = build(changes, observed, now);
  // Looked at again after a quiet period. In memory only: if this daemon dies meanwhile, the
  // rescan at start finds the file differing from the index.
  for (auto& p : hold_) {
    journal::Record r;
    r.op = journal::Op::Write;
    r.time_ns = realtime_ns();
    r.path = std::move(p);
    queue_.add(r, now);
  }
  hold_.clear();
  for (auto& c : again_) {
    journal::Record r;
    r.op = c.from.empty() ? journal::Op::Write : journal::Op::Rename;
    r.time_ns = realtime_ns();
    if (c.from.empty()) {
      r.path = c.path;
    } else {
      r.path = c.from;
      r.to = c.path;
    }
    queue_.add(r, now);
    if (c.subtree && c.from.empty()) {
      journal::Record sub = r;
      sub.op = journal::Op::Rescan;
      queue_.add(sub, now);
    }
  }
  again_.clear();
  SessionRequest req = propagation_request(eng_.members(), std::move(entries));
  if (req.entries.empty() || req.targets.empty()) {
    if (!req.entries.empty())
      spdlog::info("{} change(s) recorded, no other member to send them to", req.entries.size());
    reader_.commit(inflight_pos_);
    committed_pos_ = inflight_pos_;
    return;
  }
  inflight_entries_ = req.entries.size();
  inflight_since_ = now;
  stats_.entries += inflight_entries_;
  ++stats_.pushes;
  SessionSink sink;
  sink.line = [](int level, const std::string& line) {
    // One line per file pushed at -d 1; skipped files are not worth a line.
    if (line.rfind("error", 0) == 0)
      spdlog::warn("propagate: {}", line);
    else if (level <= 1)
      spdlog::debug("propagate: {}", line);
  };
  sink.failed_targets = [this](const std::vector<Target>& ts) {
    if (on_failed_) on_failed_(ts);
  };
  sink.done = [this](bool ok) {
    done_ = true;
    ok_ = ok;
    if (wake_) wake_();
  };
  sid_ = eng_.start_session(std::move(req), std::move(sink), now);
  started_ = true;
}

TimePoint AutoPush::run(TimePoint now) {
  if (done_) {
    done_ = false;
    sid_.reset();
    if (!ok_) ++stats_.failed_pushes;
    spdlog::debug(
        "propagated {} path(s) in {} ms{}", inflight_entries_,
        std::chrono::duration_cast<std::chrono::milliseconds>(now - inflight_since_).count(),
        ok_ ? "" : " (with errors)");
    // Done means every member answered for every path, or was dropped: members that failed
    // are caught up again (CatchUp::failed), not sent these records again.
    if (int e = reader_.commit(inflight_pos_))
      spdlog::error("change journal cursor: {}", std::strerror(e));
    committed_pos_ = inflight_pos_;
  }
  while (!echo_order_.empty() && now - echo_order_.front().first > kEchoMemory) {
    auto it = echo_.find(echo_order_.front().second);
    if (it != echo_.end()) echo_.erase(it);
    echo_order_.pop_front();
  }
  for (int round = 0; round < 64 && queue_.size() < kMaxQueued; ++round) {
    std::vector<journal::Record> recs;
    std::vector<std::string> warnings;
    journal::Reader::Position pos = reader_.read(recs, warnings);
    for (auto& w : warnings) spdlog::warn("{}", w);
    for (auto& r : recs) {
      if (spdlog::should_log(spdlog::level::trace))
        spdlog::trace("journal: {} {}{}{}", journal::to_string(r.op), shown(r.path),
                      r.to.empty() ? "" : " -> ", shown(r.to));
      queue_.add(r, now);
    }
    stats_.records += recs.size();
    read_pos_ = pos;
    if (recs.empty()) break;
  }
  if (!sid_ && !building_ && queue_.empty() && read_pos_ != committed_pos_) {
    reader_.commit(read_pos_);  // nothing in what was read needs sending
    committed_pos_ = read_pos_;
  }
  if (!sid_ && !building_ && !queue_.empty() && now >= queue_.due() && now >= settle_until_) {
    if (cfg_.hold_while_receiving && eng_.receiving_active()) return now + 50ms;
    push();
  }
  if (sid_ || building_) return now + 1s;  // done_ and the build wake us earlier
  if (queue_.empty()) return now + 5s;
  return std::max(queue_.due(), settle_until_);
}

std::vector<std::string> AutoPush::status_lines() const {
  std::vector<std::string> v;
  v.push_back("journal   : backlog " + std::to_string(reader_.backlog()) + " bytes, " +
              std::to_string(queue_.size()) + " path(s) waiting" +
              (sid_ ? ", pushing " + std::to_string(inflight_entries_) : std::string()));
  v.push_back("propagate : " + std::to_string(stats_.records) + " records, " +
              std::to_string(stats_.pushes) + " pushes, " + std::to_string(stats_.entries) +
              " paths, " + std::to_string(stats_.echoes) + " echoes skipped, " +
              std::to_string(held_.size()) + " held open for writing");
  return v;
}

}  // namespace makuo
