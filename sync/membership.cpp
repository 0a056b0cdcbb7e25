#include "sync/membership.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace makuo {

std::string Endpoint::str() const {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(port);
}

bool Membership::announce(wire::NodeId id, const wire::Announce& a, Endpoint from, TimePoint now) {
  auto [it, fresh] = members_.try_emplace(id);
  Member& m = it->second;
  m.id = id;
  m.name = a.name;
  m.version = a.version;
  m.flags = a.flags;
  m.ep = from;
  m.last_seen = now;
  return fresh;
}

void Membership::touch(wire::NodeId id, TimePoint now) {
  if (auto it = members_.find(id); it != members_.end()) it->second.last_seen = now;
}

bool Membership::note_skew(wire::NodeId id, int64_t skew_ns, int64_t max_skew_ns) {
  auto it = members_.find(id);
  if (it == members_.end()) return false;
  Member& m = it->second;
  m.clock_skew_ns = skew_ns;
  bool beyond = skew_ns > max_skew_ns || -skew_ns > max_skew_ns;
  if (beyond == m.skewed) return false;
  m.skewed = beyond;
  return true;
}

bool Membership::remove(wire::NodeId id) {
  return members_.erase(id) > 0;
}

std::vector<Member> Membership::expire(TimePoint now) {
  std::vector<Member> gone;
  for (auto it = members_.begin(); it != members_.end();) {
    if (now - it->second.last_seen > expiry_) {
      gone.push_back(it->second);
      it = members_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

const Member* Membership::find(wire::NodeId id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

const Member* Membership::find_by_name(const std::string& name) const {
  for (auto& [id, m] : members_)
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<Member> Membership::sorted() const {
  std::vector<Member> v;
  for (auto& [id, m] : members_) v.push_back(m);
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return v;
}

}  // namespace makuo
