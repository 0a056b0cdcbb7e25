#include "daemon/daemon_status.hpp"

#include <algorithm>
#include <cstdio>

#include "state/journal.hpp"
#include "sync/auto_push.hpp"
#include "sync/catch_up.hpp"
#include "sync/engine.hpp"
#include "sync/tree_index.hpp"
#include "sync/watcher.hpp"

namespace makuo {
namespace {

const ctl::Metric* find(const ctl::StatusReport& r, const char* name) {
  for (auto& m : r.metrics)
    if (m.name == name) return &m;
  return nullptr;
}

std::string count(const ctl::StatusReport& r, const char* name) {
  const ctl::Metric* m = find(r, name);
  return std::to_string(m ? uint64_t(m->value) : 0);
}

}  // namespace

void add_daemon_metrics(ctl::StatusReport& r, const DaemonParts& p) {
  if (p.catchup && p.index && p.engine) {
    auto& c = p.catchup->stats();
    r.catch_up = p.catchup->state();
    r.add("makuo_catchup_rounds_total", "Catch-up pushes started", double(c.rounds));
    r.add("makuo_catchup_updated_total", "Files updated on members by catch-up", double(c.updated));
    r.add("makuo_catchup_deleted_total", "Deletions applied on members by catch-up",
          double(c.deleted));
    r.add("makuo_tombstones", "Deletions remembered for members that were away",
          double(p.index->tombstones_size()), false);
    r.add("makuo_index_entries", "Paths in the tree index", double(p.index->size()), false);
    r.add("makuo_conflicts_total", "Versions written here that lost to concurrent writes elsewhere",
          double(p.engine->recv_stats().conflicts));
  }
  if (p.engine) {
    auto members = p.engine->members().sorted();
    for (auto& m : members)
      r.add("makuo_clock_skew_seconds", "A member's wall clock minus ours, from its last heartbeat",
            double(m.clock_skew_ns) / 1e9, false, "member", m.name);
    r.add("makuo_clock_skewed_members", "Members whose clock is further than --max-skew from ours",
          double(std::ranges::count_if(members, [](const Member& m) { return m.skewed; })), false);
  }
  if (p.autopush && p.journal) {
    auto& a = p.autopush->stats();
    r.add("makuo_journal_backlog_bytes", "Recorded changes not yet propagated (bytes)",
          double(p.journal->backlog()), false);
    r.add("makuo_journal_records_total", "Change records read from the journal", double(a.records));
    r.add("makuo_propagate_pushes_total", "Pushes of recorded changes", double(a.pushes));
    r.add("makuo_propagate_paths_total", "Paths in pushes of recorded changes", double(a.entries));
    r.add("makuo_propagate_echoes_total", "Changes skipped as our own receiver's writes",
          double(a.echoes));
    r.add("makuo_propagate_held_total",
          "Files held back from a push while open for writing through the mount", double(a.held));
  }
  if (p.watcher) {
    auto& w = p.watcher->stats();
    r.add("makuo_watch_directories", "Directories watched with inotify", double(w.watched), false);
    r.add("makuo_watch_events_total", "inotify events", double(w.events));
    r.add("makuo_watch_overflows_total", "inotify queue overflows (each answered by a rescan)",
          double(w.overflows));
    r.add("makuo_watch_refused_total", "Directories the watch table refused",
          double(w.watch_failures));
  }
}

std::vector<std::string> daemon_status_lines(const ctl::StatusReport& r, double max_skew_s,
                                             bool keep_conflicts) {
  std::vector<std::string> v;
  if (find(r, "makuo_catchup_rounds_total")) {
    v.push_back("catch-up  : " + r.catch_up + "; " + count(r, "makuo_catchup_rounds_total") +
                " rounds, " + count(r, "makuo_catchup_updated_total") + " updated, " +
                count(r, "makuo_catchup_deleted_total") + " deleted, " +
                count(r, "makuo_tombstones") + " tombstones");
    v.push_back("index     : " + count(r, "makuo_index_entries") + " entries; " +
                count(r, "makuo_conflicts_total") + " conflicts lost here" +
                (keep_conflicts ? " (kept)" : ""));
  }
  if (find(r, "makuo_clock_skewed_members")) {
    std::string skewed;
    for (auto& m : r.metrics) {
      if (m.name != "makuo_clock_skew_seconds") continue;
      double secs = m.value;
      if (!(secs > max_skew_s || -secs > max_skew_s)) continue;
      char b[64];
      std::snprintf(b, sizeof b, " is %.1f s %s", secs < 0 ? -secs : secs,
                    secs < 0 ? "behind" : "ahead");
      skewed += (skewed.empty() ? "" : ", ") + m.label_value + b;
    }
    char lim[32];
    std::snprintf(lim, sizeof lim, "%g s", max_skew_s);
    v.push_back("clock     : " + (skewed.empty()
                                      ? "every member within --max-skew " + std::string(lim)
                                      : skewed + " (beyond --max-skew " + lim + ")"));
  }
  if (find(r, "makuo_watch_directories"))
    v.push_back("watch     : " + count(r, "makuo_watch_directories") + " directories, " +
                count(r, "makuo_watch_events_total") + " events, " +
                count(r, "makuo_watch_overflows_total") + " overflows, " +
                count(r, "makuo_watch_refused_total") + " refused watches");
  return v;
}

}  // namespace makuo
