#include "sync/catch_up.hpp"

#include <spdlog/spdlog.h>
#include <time.h>

#include "sync/scan.hpp"

namespace makuo {
namespace {

int64_t realtime_ns() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

}  // namespace

CatchUp::CatchUp(CatchUpConfig cfg, Engine& engine, Tombstones& tombs)
    : cfg_(std::move(cfg)), eng_(engine), tombs_(tombs) {}

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

std::string CatchUp::state() const {
  if (sid_) return "pushing " + std::to_string(sid_entries_) + " entries (" + sid_why_ + ")";
  if (!joiners_.empty()) return "waiting for membership to settle";
  return "idle";
}

void CatchUp::push(const std::vector<Target>& targets, const std::string& why, TimePoint now) {
  ScanOptions so;
  so.recursive = true;
  so.base_path = cfg_.base_path;
  so.excludes = cfg_.excludes;
  ScanResult sr = scan(cfg_.basefd, so);
  for (auto& e : sr.errors) spdlog::warn("catch-up: {}", e);
  std::set<std::string> present;
  for (auto& e : sr.entries) present.insert(e.path);
  size_t ntombs = 0;
  for (auto& [path, when] : tombs_.list(realtime_ns())) {
    if (present.count(path)) continue;
    wire::Entry e;
    e.kind = wire::Kind::Absent;
    e.path = path;
    e.mtime_ns = when;
    sr.entries.push_back(std::move(e));
    ++ntombs;
  }
  SessionRequest req;
  req.flags = wire::kAuto | wire::kRecursive;
  req.entries = std::move(sr.entries);
  req.targets = targets;
  req.loglevel = 1;
  sid_entries_ = req.entries.size();
  stats_.entries += sid_entries_;
  ++stats_.rounds;
  std::string names;
  for (auto& t : targets) names += (names.empty() ? "" : ",") + t.name;
  sid_why_ = why + ", to " + names;
  spdlog::info("catch-up ({}): {} entries, {} tombstones", sid_why_, sid_entries_, ntombs);
  SessionSink sink;
  sink.line = [this](int level, const std::string& line) {
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
  sink.done = [this](bool) {
    done_ = true;
    if (wake_) wake_();
  };
  sid_ = eng_.start_session(std::move(req), std::move(sink), now);
  started_ = true;
}

TimePoint CatchUp::run(TimePoint now) {
  if (done_) {
    done_ = false;
    sid_.reset();
    spdlog::info("catch-up ({}) done: {} updated, {} deleted, {} newer there kept so far", sid_why_,
                 stats_.updated, stats_.deleted, stats_.newer);
  }
  if (joiners_.empty() || sid_) return sid_ ? now + 1s : TimePoint::max();
  if (now < due_) return due_;
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
  if (!targets.empty()) push(targets, why, now);
  return sid_ ? now + 1s : TimePoint::max();
}

}  // namespace makuo
