#include "ctl/status_report.hpp"

#include <gtest/gtest.h>

namespace makuo::ctl {
namespace {

TEST(StatusReport, JsonStringsEscapeWhatJsonRequires) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_string(std::string("nl\n\t\x01", 5)), "\"nl\\u000a\\u0009\\u0001\"");
  EXPECT_EQ(json_string("caf\xc3\xa9 \xe6\x97\xa5"), "\"caf\xc3\xa9 \xe6\x97\xa5\"");  // UTF-8 kept
  EXPECT_EQ(json_string("bad\xff\xc3"), "\"bad\\ufffd\\ufffd\"");  // not UTF-8: replaced
}

StatusReport sample() {
  StatusReport r;
  r.node = "web\"1";
  r.version = "0.1.0";
  r.base = "/var/www";
  r.pid = 42;
  r.members.push_back({"web2", "10.0.0.2:5000", "0.1.0", 0.5, false, true});
  r.receiving.push_back("sid=3 from web2");
  r.add("makuo_rx_packets_total", "Datagrams received", 10);
  r.add("makuo_members", "Members", 1, false);
  r.add("makuo_dropped_packets_total", "Dropped", 2, true, "reason", "truncated");
  r.add("makuo_dropped_packets_total", "Dropped", 3, true, "reason", "malformed");
  return r;
}

TEST(StatusReport, JsonGroupsLabelledCounters) {
  std::string j = to_json(sample());
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.back(), '}');
  EXPECT_NE(j.find("\"node\":\"web\\\"1\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"members\":[{\"name\":\"web2\",\"address\":\"10.0.0.2:5000\""),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"nosend\":true"), std::string::npos) << j;
  EXPECT_NE(j.find("\"counters\":{\"rx_packets\":10,\"members\":1,"
                   "\"dropped_packets\":{\"truncated\":2,\"malformed\":3}}"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"sending\":[]"), std::string::npos) << j;
}

TEST(StatusReport, PrometheusTextHasOneHeaderPerMetric) {
  std::string p = to_prometheus(sample());
  EXPECT_EQ(p,
            "# HELP makuo_rx_packets_total Datagrams received\n"
            "# TYPE makuo_rx_packets_total counter\n"
            "makuo_rx_packets_total 10\n"
            "# HELP makuo_members Members\n"
            "# TYPE makuo_members gauge\n"
            "makuo_members 1\n"
            "# HELP makuo_dropped_packets_total Dropped\n"
            "# TYPE makuo_dropped_packets_total counter\n"
            "makuo_dropped_packets_total{reason=\"truncated\"} 2\n"
            "makuo_dropped_packets_total{reason=\"malformed\"} 3\n");
}

}  // namespace
}  // namespace makuo::ctl
