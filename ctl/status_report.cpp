#include "ctl/status_report.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "sync/udp_node.hpp"

namespace makuo::ctl {
namespace {

std::string num(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
  }
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", std::isfinite(v) ? v : 0.0);
  return b;
}

std::string addr(const Endpoint& ep) {
  in_addr a{htonl(ep.addr)};
  char b[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, b, sizeof b);
  return std::string(b) + ":" + std::to_string(ep.port);
}

double secs(Duration d) {
  return std::chrono::duration<double>(d).count();
}

// "makuo_rx_packets_total" -> "rx_packets"
std::string short_name(const std::string& n) {
  std::string s = n.rfind("makuo_", 0) == 0 ? n.substr(6) : n;
  if (s.size() > 6 && s.ends_with("_total")) s.resize(s.size() - 6);
  return s;
}

}  // namespace

void StatusReport::add(std::string name, std::string help, double v, bool counter,
                       std::string label_key, std::string label_value) {
  metrics.push_back(
      {std::move(name), std::move(help), counter, std::move(label_key), std::move(label_value), v});
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += char(c);
      ++i;
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
      ++i;
    } else if (c < 0x80) {
      o += char(c);
      ++i;
    } else {
      // Pass valid UTF-8 sequences through; anything else is not text.
      size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      bool ok = len && i + len <= s.size();
      for (size_t k = 1; ok && k < len; ++k)
        ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (ok) {
        o.append(s, i, len);
        i += len;
      } else {
        o += "\\ufffd";
        ++i;
      }
    }
  }
  return o + "\"";
}

StatusReport collect_status(const Engine& e, const UdpNode& node, const std::string& base,
                            TimePoint started, TimePoint now) {
  StatusReport r;
  r.node = e.config().name;
  r.version = e.config().version;
  r.base = base;
  r.pid = long(getpid());
  r.uptime_s = secs(now - started);
  for (auto& m : e.members().sorted())
    r.members.push_back({m.name, addr(m.ep), m.version, secs(now - m.last_seen),
                         bool(m.flags & wire::kAnnounceReadOnly),
                         bool(m.flags & wire::kAnnounceNoSend)});
  r.sending = e.send_info(now);
  r.receiving = e.receive_lines();
  auto& st = e.stats();
  auto& rs = e.recv_stats();
  auto& au = node.auth_stats();
  r.add("makuo_members", "Other members currently in the cluster", double(e.members().size()),
        false);
  r.add("makuo_rx_packets_total", "Datagrams received", double(st.rx_packets));
  r.add("makuo_rx_bytes_total", "Bytes received", double(st.rx_bytes));
  r.add("makuo_tx_packets_total", "Datagrams sent", double(node.tx_packets()));
  r.add("makuo_tx_errors_total", "Datagrams the socket refused", double(node.tx_errors()));
  r.add("makuo_tx_calls_total", "Send system calls (one carries up to 64 datagrams)",
        double(node.tx_calls()));
  r.add("makuo_repair_blocks_total", "Repair datagrams sent after a NACK",
        double(e.repair_blocks()));
  r.add("makuo_coded_repairs_total", "Repair datagrams coded to repair several receivers",
        double(e.coded_repairs()));
  r.add("makuo_coded_rebuilt_total", "Blocks rebuilt here from coded repairs",
        double(rs.coded_rebuilt));
  r.add("makuo_send_rate_bytes", "Current send rate in bytes/s (0: not limited)",
        double(e.send_rate()), false);
  r.add("makuo_pushes_sent_total", "Pushes this node started", double(st.sessions_sent));
  r.add("makuo_pushes_received_total", "Pushes this node received", double(st.sessions_received));
  r.add("makuo_pushes_in_flight", "Pushes this node is sending", double(r.sending.size()), false);
  r.add("makuo_files_committed_total", "Files received, verified and committed",
        double(rs.files_committed));
  r.add("makuo_files_failed_total", "Files that failed on this node", double(rs.files_failed));
  r.add("makuo_bytes_written_total", "Bytes of received files written", double(rs.bytes_written));
  r.add("makuo_recv_memory_bytes", "Memory held by the pushes this node is receiving",
        double(e.recv_memory().used()), false);
  r.add("makuo_recv_memory_refused_total",
        "Entries and files refused because --recv-memory was used up", double(rs.refused_memory));
  r.add("makuo_commit_syncs_total", "syncfs calls (one per batch of commits)",
        double(e.committer().syncs()));
  const char* drop_help = "Datagrams dropped, by reason";
  std::pair<const char*, uint64_t> drops[] = {{"truncated", st.drop_truncated},
                                              {"bad_magic", st.drop_magic},
                                              {"makuosan", st.drop_makuosan},
                                              {"bad_version", st.drop_version},
                                              {"malformed", st.drop_malformed},
                                              {"unknown_session", st.drop_unknown_session},
                                              {"too_many_sessions", st.drop_too_many_sessions},
                                              {"not_member", st.drop_not_member}};
  for (auto& [reason, v] : drops)
    r.add("makuo_dropped_packets_total", drop_help, double(v), true, "reason", reason);
  const char* auth_help = "Datagrams refused by the cluster key check, by reason";
  std::pair<const char*, uint64_t> auths[] = {
      {"plaintext", au.plaintext}, {"no_key", au.no_key}, {"unknown_key", au.unknown_key},
      {"bad_tag", au.bad_tag},     {"replay", au.replay}, {"truncated", au.truncated},
      {"unproven", au.unproven}};
  for (auto& [reason, v] : auths)
    r.add("makuo_auth_failures_total", auth_help, double(v), true, "reason", reason);
  return r;
}

std::string to_json(const StatusReport& r) {
  std::string o = "{";
  o += "\"node\":" + json_string(r.node) + ",\"version\":" + json_string(r.version) +
       ",\"base\":" + json_string(r.base) + ",\"pid\":" + std::to_string(r.pid) +
       ",\"uptime_seconds\":" + num(r.uptime_s);
  o += ",\"members\":[";
  for (size_t i = 0; i < r.members.size(); ++i) {
    auto& m = r.members[i];
    o += (i ? ",{" : "{") + std::string("\"name\":") + json_string(m.name) +
         ",\"address\":" + json_string(m.address) + ",\"version\":" + json_string(m.version) +
         ",\"last_seen_seconds_ago\":" + num(m.last_seen_s) +
         ",\"readonly\":" + (m.readonly ? "true" : "false") +
         ",\"nosend\":" + (m.nosend ? "true" : "false") + "}";
  }
  o += "],\"sending\":[";
  for (size_t i = 0; i < r.sending.size(); ++i) {
    auto& s = r.sending[i];
    double age = secs(s.age);
    o += (i ? ",{" : "{") + std::string("\"sid\":") + std::to_string(s.sid) +
         ",\"entries\":" + std::to_string(s.entries) +
         ",\"files_done\":" + std::to_string(s.progress.files_done) +
         ",\"bytes_sent\":" + std::to_string(s.progress.bytes_sent) +
         ",\"bytes_total\":" + std::to_string(s.progress.bytes_total) + ",\"seconds\":" + num(age) +
         ",\"bytes_per_second\":" + num(age > 0 ? double(s.progress.bytes_sent) / age : 0) +
         ",\"targets\":[";
    for (size_t k = 0; k < s.targets.size(); ++k) o += (k ? "," : "") + json_string(s.targets[k]);
    o += "]}";
  }
  o += "],\"receiving\":[";
  for (size_t i = 0; i < r.receiving.size(); ++i) o += (i ? "," : "") + json_string(r.receiving[i]);
  o += "],\"catch_up\":{\"state\":" + json_string(r.catch_up) + "}";
  o += ",\"counters\":{";
  // Labelled metrics become objects keyed by their label value.
  std::map<std::string, std::string> grouped;
  std::vector<std::string> order;
  for (auto& m : r.metrics) {
    std::string k = short_name(m.name);
    if (!grouped.count(k)) order.push_back(k);
    std::string& g = grouped[k];
    if (m.label_key.empty()) {
      g = num(m.value);
    } else {
      g += (g.empty() ? "{" : ",") + json_string(m.label_value) + ":" + num(m.value);
    }
  }
  for (size_t i = 0; i < order.size(); ++i) {
    std::string v = grouped[order[i]];
    if (!v.empty() && v[0] == '{') v += "}";
    o += (i ? "," : "") + json_string(order[i]) + ":" + v;
  }
  o += "}}";
  return o;
}

std::string to_prometheus(const StatusReport& r) {
  std::string o;
  std::string last;
  for (auto& m : r.metrics) {
    if (m.name != last) {
      o += "# HELP " + m.name + " " + m.help + "\n# TYPE " + m.name + " " +
           (m.counter ? "counter" : "gauge") + "\n";
      last = m.name;
    }
    o += m.name;
    if (!m.label_key.empty()) o += "{" + m.label_key + "=\"" + m.label_value + "\"}";
    o += " " + num(m.value) + "\n";
  }
  return o;
}

}  // namespace makuo::ctl
