#include "sync/catch_up.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstring>

#include "sync/dir_digest.hpp"
#include "sync/fsops.hpp"
#include "sync/paths.hpp"
#include "sync/push_request.hpp"

namespace makuo {
CatchUp::CatchUp(CatchUpConfig cfg, Engine& engine) : cfg_(std::move(cfg)), eng_(engine) {}

void CatchUp::on_member(const Member& m, bool joined, TimePoint now) {
  if (!joined) {
    joiners_.erase(m.id);
    if (eng_.members().size() == 0) alone_ = true;
    return;
  }
  if (joiners_.empty() && eng_.members().size() > 1) alone_ = false;
  joiners_.insert(m.id);
  due_ = now + cfg_.settle;
}

void CatchUp::failed(const std::vector<Target>& targets, TimePoint now) {
  if (targets.empty()) return;
  for (auto& t : targets) {
    auto [it, fresh] = retries_.try_emplace(t.id);
    Retry& r = it->second;
    if (fresh)
      r.wait = cfg_.retry;
    else if (r.running)
      r.wait = std::min(r.wait * 2, cfg_.retry * 16);
    else
      continue;  // already waiting for its turn
    r.running = false;
    r.due = now + r.wait;
    spdlog::info("catch-up of {} again in {} s: it failed to take changes", t.name,
                 std::chrono::duration_cast<std::chrono::seconds>(r.wait).count());
  }
  if (wake_) wake_();
}

std::string CatchUp::state() const {
  if (walking_) return "walking the tree (" + sid_why_ + ")";
  if (sid_ && phase_ == 1)
    return "comparing " + std::to_string(sid_entries_) + " directories (" + sid_why_ + ")";
  if (sid_) return "pushing " + std::to_string(sid_entries_) + " entries (" + sid_why_ + ")";
  if (!joiners_.empty()) return "waiting for membership to settle";
  if (!retries_.empty())
    return "idle, " + std::to_string(retries_.size()) +
           " member(s) to catch up again after failures";
  return "idle";
}

SessionSink CatchUp::sink(std::function<void(int, const std::string&)> line) {
  SessionSink s;
  s.line = std::move(line);
  s.failed_targets = [this](const std::vector<Target>& ts) {
    round_failed_.insert(round_failed_.end(), ts.begin(), ts.end());
  };
  s.done = [this](bool) {
    done_ = true;
    if (wake_) wake_();
  };
  return s;
}

void CatchUp::compare(const std::vector<Target>& targets, const std::string& why) {
  targets_ = targets;
  differing_.clear();
  std::string names;
  for (auto& t : targets) names += (names.empty() ? "" : ",") + t.name;
  sid_why_ = why + ", to " + names;
  walking_ = true;
  // The walk on the worker; versions and digests from the index on the event loop.
  eng_.worker().post([this, basefd = cfg_.basefd, base = cfg_.base_path,
                      excludes = cfg_.excludes]() -> Worker::Done {
    auto dirs = std::make_shared<std::vector<std::pair<wire::Entry, std::vector<wire::Entry>>>>();
    // One listing per directory gives both its digest and the subdirectories to visit.
    std::vector<wire::Entry> todo(1);  // the base itself first (not sent: its path is "")
    while (!todo.empty()) {
      wire::Entry dir = std::move(todo.back());
      todo.pop_back();
      std::vector<wire::Entry> children;
      if (int err = dir_children(basefd, dir.path, children)) {
        spdlog::warn("catch-up: {}: {}", dir.path.empty() ? "." : shown(dir.path),
                     std::strerror(err));
        continue;
      }
      for (auto& c : children)
        if (c.kind == wire::Kind::Dir && !(excludes && excludes->match(base, c.path, true)))
          todo.push_back(c);
      if (!dir.path.empty()) dirs->emplace_back(std::move(dir), std::move(children));
    }
    return [this, dirs] {
      walking_ = false;
      std::vector<wire::Entry> digests;
      for (auto& [dir, children] : *dirs) {
        dir.hash = versioned_digest(children, cfg_.index, dir.path);
        digests.push_back(std::move(dir));
      }
      SessionRequest req = digest_request(targets_, std::move(digests));
      sid_entries_ = req.entries.size();
      stats_.dirs_compared += sid_entries_;
      ++stats_.rounds;
      phase_ = 1;
      SessionSink s = sink([](int, const std::string&) {});
      s.result = [this](const std::string&, const wire::Entry& e, wire::Code c) {
        if (c == wire::Code::CheckNg) differing_.insert(e.path);
      };
      sid_ = eng_.start_session(std::move(req), std::move(s), Clock::now());
      started_ = true;
      if (wake_) wake_();
    };
  });
}

void CatchUp::push() {
  walking_ = true;
  std::vector<std::string> dirs(differing_.begin(), differing_.end());
  dirs.insert(dirs.begin(), "");
  stats_.dirs_differing += differing_.size();
  eng_.worker().post([this, dirs, basefd = cfg_.basefd, base = cfg_.base_path,
                      excludes = cfg_.excludes]() -> Worker::Done {
    auto listed = std::make_shared<std::vector<std::pair<std::string, std::vector<wire::Entry>>>>();
    for (auto& dir : dirs) {
      std::vector<wire::Entry> v;
      if (dir_children(basefd, dir, v) != 0) v.clear();
      std::erase_if(v, [&](const wire::Entry& e) {
        if (excludes && excludes->match(base, e.path, e.kind == wire::Kind::Dir)) return true;
        // Half of a write through the mount: AutoPush sends it when the writer closes it (or
        // the dead mount's lock goes), from the record of its open. A lock on a file untouched
        // for longer than AutoPush would hold it is someone else's, not a write in progress.
        return e.kind == wire::Kind::File &&
               realtime_ns() - e.mtime_ns < std::chrono::nanoseconds(kWriteHoldMax).count() &&
               open_for_writing(basefd, e.path);
      });
      listed->emplace_back(dir, std::move(v));
    }
    return [this, listed] {
      walking_ = false;
      start_push(*listed);
    };
  });
}

void CatchUp::start_push(std::vector<std::pair<std::string, std::vector<wire::Entry>>>& listed) {
  std::vector<wire::Entry> entries, absent;
  std::set<std::string> present;
  uint64_t clock = cfg_.clock ? cfg_.clock->tick() : uint64_t(realtime_ns());
  for (auto& [dir, children] : listed) {
    for (auto& e : children) {
      // Changed since it was listed (our receiver, a local write): its own push, or the next
      // catch-up, sends what it is then; recorded now it would be taken for a change of ours.
      if (!still_there(cfg_.basefd, e)) continue;
      if (cfg_.index) cfg_.index->note_local(e, cfg_.self, clock, realtime_ns());
      if (present.insert(e.path).second) entries.push_back(std::move(e));
    }
    if (!cfg_.index) continue;
    // What was deleted in it, and below what was deleted in it (a directory's contents).
    for (auto& t : tombstone_entries(*cfg_.index, dir)) {
      for (auto& [p, ie] : cfg_.index->tombstones_below(t.path))
        if (present.insert(p).second) absent.push_back(entry_of_tombstone(p, ie));
    }
  }
  size_t ntombs = absent.size();
  // Deepest first: a directory goes after what was in it.
  std::stable_sort(absent.begin(), absent.end(), [](const wire::Entry& a, const wire::Entry& b) {
    return std::count(a.path.begin(), a.path.end(), '/') >
           std::count(b.path.begin(), b.path.end(), '/');
  });
  for (auto& e : absent) entries.push_back(std::move(e));
  SessionRequest req = catch_up_request(targets_, std::move(entries));
  sid_entries_ = req.entries.size();
  stats_.entries += sid_entries_;
  phase_ = 2;
  spdlog::info("catch-up ({}): {} of {} directories differ; {} entries, {} tombstones", sid_why_,
               differing_.size(), stats_.dirs_compared, sid_entries_, ntombs);
  SessionSink s = sink([](int level, const std::string& line) {
    if (line.rfind("error", 0) == 0)
      spdlog::warn("catch-up: {}", line);
    else if (level <= 1)
      spdlog::debug("catch-up: {}", line);
  });
  s.result = [this](const std::string&, const wire::Entry&, wire::Code c) {
    switch (c) {
      case wire::Code::Done:
      case wire::Code::DoneOwnerKept:
        ++stats_.updated;
        break;
      case wire::Code::Deleted:
        ++stats_.deleted;
        break;
      case wire::Code::Newer:
        ++stats_.newer;
        break;
      case wire::Code::Failed:
        ++stats_.failed;
        break;
      default:
        break;
    }
  };
  sid_ = eng_.start_session(std::move(req), std::move(s), Clock::now());
  started_ = true;
  if (wake_) wake_();
}

TimePoint CatchUp::run(TimePoint now) {
  if (done_) {
    done_ = false;
    sid_.reset();
    failed(std::exchange(round_failed_, {}), now);
    if (phase_ == 1) {
      push();  // the differing directories' contents
      return now + 1s;
    }
    phase_ = 0;
    // Who was caught up again and did not fail this time is done with.
    std::erase_if(retries_, [](const auto& r) { return r.second.running; });
    spdlog::info("catch-up ({}) done: {} updated, {} deleted, {} newer there kept so far", sid_why_,
                 stats_.updated, stats_.deleted, stats_.newer);
  }
  if (sid_ || walking_) return now + 1s;
  if (!joiners_.empty() && now >= due_) {
    std::vector<Target> targets;
    std::string why;
    auto members = eng_.members().sorted();
    if (alone_) {
      targets = every_member(eng_.members());
      why = "joined the cluster";
    } else {
      for (wire::NodeId j : joiners_) {
        const Member* jm = eng_.members().find(j);
        if (!jm) continue;
        // The lowest-named member other than the joiner answers for the cluster.
        std::string leader = eng_.config().name;
        for (auto& m : members)
          if (m.id != j && m.name < leader) leader = m.name;
        if (leader == eng_.config().name) targets.push_back(target_of(*jm));
      }
      why = "new member";
    }
    joiners_.clear();
    alone_ = false;
    due_ = TimePoint::max();
    if (!targets.empty()) {
      compare(targets, why);
      return now + 1s;
    }
  }
  TimePoint next = joiners_.empty() ? TimePoint::max() : due_;
  std::vector<Target> again;
  for (auto it = retries_.begin(); it != retries_.end();) {
    const Member* m = eng_.members().find(it->first);
    if (!m) {  // gone: it is caught up when it is back
      it = retries_.erase(it);
      continue;
    }
    if (it->second.due <= now) {
      it->second.running = true;
      again.push_back({m->id, m->name, m->ep});
    } else {
      next = std::min(next, it->second.due);
    }
    ++it;
  }
  if (!again.empty()) {
    compare(again, "after failures");
    return now + 1s;
  }
  return next;
}

}  // namespace makuo
