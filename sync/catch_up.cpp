#include "sync/catch_up.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstring>

#include "sync/dir_digest.hpp"
#include "sync/fsops.hpp"

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

void CatchUp::compare(const std::vector<Target>& targets, const std::string& why, TimePoint now) {
  SessionRequest req;
  req.flags = wire::kDigest;
  // One listing per directory gives both its digest and the subdirectories to visit.
  std::vector<wire::Entry> todo(1);  // the base itself first (not sent: its path is "")
  while (!todo.empty()) {
    wire::Entry dir = std::move(todo.back());
    todo.pop_back();
    std::vector<wire::Entry> children;
    if (int err = dir_children(cfg_.basefd, dir.path, children)) {
      spdlog::warn("catch-up: {}: {}", dir.path.empty() ? "." : dir.path, std::strerror(err));
      continue;
    }
    for (auto& c : children)
      if (c.kind == wire::Kind::Dir &&
          !(cfg_.excludes && cfg_.excludes->match(cfg_.base_path, c.path, true)))
        todo.push_back(c);
    if (dir.path.empty()) continue;
    std::vector<wire::Entry> tombs;
    if (cfg_.index) {
      for (auto& c : children) cfg_.index->annotate(c, "?", UINT64_MAX);  // as dir_digest does
      tombs = tombstone_entries(*cfg_.index, dir.path);
    }
    dir.hash = digest_of(children, tombs);
    req.entries.push_back(std::move(dir));
  }
  req.targets = targets;
  req.loglevel = 1;
  targets_ = targets;
  differing_.clear();
  std::string names;
  for (auto& t : targets) names += (names.empty() ? "" : ",") + t.name;
  sid_why_ = why + ", to " + names;
  sid_entries_ = req.entries.size();
  stats_.dirs_compared += sid_entries_;
  ++stats_.rounds;
  phase_ = 1;
  // "NODE: NG DIR" names a directory whose contents differ on NODE.
  auto line = [this](int, const std::string& line) {
    size_t p = line.find(": NG ");
    if (p != std::string::npos) differing_.insert(line.substr(p + 5));
  };
  sid_ = eng_.start_session(std::move(req), sink(line), now);
  started_ = true;
}

void CatchUp::push(TimePoint now) {
  std::vector<wire::Entry> entries, absent;
  std::set<std::string> present;
  uint64_t clock = cfg_.clock ? cfg_.clock->tick() : uint64_t(realtime_ns());
  auto list = [&](const std::string& dir) {
    std::vector<wire::Entry> v;
    if (dir_children(cfg_.basefd, dir, v) == 0) {
      for (auto& e : v) {
        bool is_dir = e.kind == wire::Kind::Dir;
        if (cfg_.excludes && cfg_.excludes->match(cfg_.base_path, e.path, is_dir)) continue;
        // Half of a write through the mount: AutoPush sends it when the writer closes it (or
        // the dead mount's lock goes), from the record of its open. A lock on a file untouched
        // for longer than AutoPush would hold it is someone else's, not a write in progress.
        if (e.kind == wire::Kind::File &&
            realtime_ns() - e.mtime_ns < std::chrono::nanoseconds(kWriteHoldMax).count() &&
            open_for_writing(cfg_.basefd, e.path))
          continue;
        if (cfg_.index) cfg_.index->note_local(e, cfg_.self, clock, realtime_ns());
        if (present.insert(e.path).second) entries.push_back(std::move(e));
      }
    }
    if (!cfg_.index) return;
    // What was deleted in it, and below what was deleted in it (a directory's contents).
    for (auto& t : tombstone_entries(*cfg_.index, dir)) {
      for (auto& [p, ie] : cfg_.index->tombstones_below(t.path))
        if (present.insert(p).second) absent.push_back(entry_of_tombstone(p, ie));
    }
  };
  list("");
  for (auto& d : differing_) list(d);
  stats_.dirs_differing += differing_.size();
  size_t ntombs = absent.size();
  // Deepest first: a directory goes after what was in it.
  std::stable_sort(absent.begin(), absent.end(), [](const wire::Entry& a, const wire::Entry& b) {
    return std::count(a.path.begin(), a.path.end(), '/') >
           std::count(b.path.begin(), b.path.end(), '/');
  });
  for (auto& e : absent) entries.push_back(std::move(e));
  SessionRequest req;
  req.flags = wire::kAuto | wire::kRecursive;
  req.entries = std::move(entries);
  req.targets = targets_;
  req.loglevel = 1;
  sid_entries_ = req.entries.size();
  stats_.entries += sid_entries_;
  phase_ = 2;
  spdlog::info("catch-up ({}): {} of {} directories differ; {} entries, {} tombstones", sid_why_,
               differing_.size(), stats_.dirs_compared, sid_entries_, ntombs);
  auto line = [this](int level, const std::string& line) {
    if (line.rfind("error", 0) == 0) {
      ++stats_.failed;
      spdlog::warn("catch-up: {}", line);
      return;
    }
    if (line.rfind("update ", 0) == 0) ++stats_.updated;
    if (line.rfind("delete ", 0) == 0) ++stats_.deleted;
    if (line.rfind("kept ", 0) == 0) ++stats_.newer;
    if (level <= 1) spdlog::debug("catch-up: {}", line);
  };
  sid_ = eng_.start_session(std::move(req), sink(line), now);
  started_ = true;
}

TimePoint CatchUp::run(TimePoint now) {
  if (done_) {
    done_ = false;
    sid_.reset();
    failed(std::exchange(round_failed_, {}), now);
    if (phase_ == 1) {
      push(now);  // the differing directories' contents
      return now + 1s;
    }
    phase_ = 0;
    // Who was caught up again and did not fail this time is done with.
    std::erase_if(retries_, [](const auto& r) { return r.second.running; });
    spdlog::info("catch-up ({}) done: {} updated, {} deleted, {} newer there kept so far", sid_why_,
                 stats_.updated, stats_.deleted, stats_.newer);
  }
  if (sid_) return now + 1s;
  if (!joiners_.empty() && now >= due_) {
    std::vector<Target> targets;
    std::string why;
    auto members = eng_.members().sorted();
    if (alone_) {
      for (auto& m : members) targets.push_back({m.id, m.name, m.ep});
      why = "joined the cluster";
    } else {
      for (wire::NodeId j : joiners_) {
        const Member* jm = eng_.members().find(j);
        if (!jm) continue;
        // The lowest-named member other than the joiner answers for the cluster.
        std::string leader = eng_.config().name;
        for (auto& m : members)
          if (m.id != j && m.name < leader) leader = m.name;
        if (leader == eng_.config().name) targets.push_back({jm->id, jm->name, jm->ep});
      }
      why = "new member";
    }
    joiners_.clear();
    alone_ = false;
    due_ = TimePoint::max();
    if (!targets.empty()) {
      compare(targets, why, now);
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
    compare(again, "after failures", now);
    return now + 1s;
  }
  return next;
}

}  // namespace makuo
