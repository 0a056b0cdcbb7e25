// What the daemon's parts count, as one set of metrics in a StatusReport: Prometheus
// (--metrics-file), JSON ("status json") and the text lines of "status" are all rendered from
// it, so that they never disagree.
#pragma once
#include <string>
#include <vector>

#include "ctl/status_report.hpp"

namespace makuo {

class Engine;
class TreeIndex;
class AutoPush;
class CatchUp;
class Watcher;
namespace journal {
class Reader;
}

// Any may be null (not started yet, or not configured).
struct DaemonParts {
  const Engine* engine = nullptr;
  const TreeIndex* index = nullptr;
  const AutoPush* autopush = nullptr;
  const journal::Reader* journal = nullptr;
  const CatchUp* catchup = nullptr;
  const Watcher* watcher = nullptr;
};

void add_daemon_metrics(ctl::StatusReport& r, const DaemonParts& p);

// The "catch-up", "index", "clock" and "watch" lines of "status", from r's metrics.
std::vector<std::string> daemon_status_lines(const ctl::StatusReport& r, double max_skew_s,
                                             bool keep_conflicts);

}  // namespace makuo
