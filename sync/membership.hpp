// Who is in the cluster: learned from hello/heartbeat/bye, expired after silence. Sans-I/O.
#pragma once
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sync/transport.hpp"
#include "sync/wire.hpp"

namespace makuo {

struct Member {
  wire::NodeId id = 0;
  std::string name;
  std::string version;
  uint16_t flags = 0;
  Endpoint ep;
  TimePoint last_seen{};
  int64_t clock_skew_ns = 0;  // its wall clock minus ours, as its last announcement showed
  bool skewed = false;        // beyond --max-skew (warned once, until it is back)
};

class Membership {
 public:
  explicit Membership(Duration expiry) : expiry_(expiry) {}
  // Returns true when the node is new (or came back).
  bool announce(wire::NodeId id, const wire::Announce& a, Endpoint from, TimePoint now);
  void touch(wire::NodeId id, TimePoint now);
  bool remove(wire::NodeId id);
  // Records id's clock skew; true when it crossed max_skew (either way) with this one.
  bool note_skew(wire::NodeId id, int64_t skew_ns, int64_t max_skew_ns);
  std::vector<Member> expire(TimePoint now);
  const Member* find(wire::NodeId id) const;
  const Member* find_by_name(const std::string& name) const;
  std::vector<Member> sorted() const;  // by name
  size_t size() const { return members_.size(); }
  Duration expiry() const { return expiry_; }

 private:
  Duration expiry_;
  std::unordered_map<wire::NodeId, Member> members_;
};

}  // namespace makuo
