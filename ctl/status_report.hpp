// A point-in-time picture of a daemon for monitoring. The same facts are rendered as a JSON
// document (console "status json", msync --status --json) and as Prometheus text
// (makuosan --metrics-file). Field and metric names are a stable interface: add, never rename.
#pragma once
#include <string>
#include <vector>

#include "sync/engine.hpp"

namespace makuo {
class UdpNode;
}

namespace makuo::ctl {

struct Metric {
  std::string name;  // Prometheus name, "makuo_..."
  std::string help;
  bool counter = true;  // else a gauge
  std::string label_key, label_value;
  double value = 0;
};

struct StatusReport {
  std::string node, version, base;
  long pid = 0;
  double uptime_s = 0;
  struct MemberRow {
    std::string name, address, version;
    double last_seen_s = 0;  // seconds ago
    bool readonly = false, nosend = false;
  };
  std::vector<MemberRow> members;
  std::vector<SendInfo> sending;
  std::vector<std::string> receiving;
  std::string catch_up = "idle";
  std::vector<Metric> metrics;
  void add(std::string name, std::string help, double v, bool counter = true,
           std::string label_key = {}, std::string label_value = {});
};

StatusReport collect_status(const Engine& e, const UdpNode& node, const std::string& base,
                            TimePoint started, TimePoint now);
std::string to_json(const StatusReport& r);
std::string to_prometheus(const StatusReport& r);
// JSON string literal of s (quotes included); invalid UTF-8 bytes become U+FFFD.
std::string json_string(const std::string& s);

}  // namespace makuo::ctl
