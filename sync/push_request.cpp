#include "sync/push_request.hpp"

namespace makuo {

Target target_of(const Member& m) {
  return {m.id, m.name, m.ep};
}

std::vector<Target> every_member(const Membership& ms) {
  std::vector<Target> out;
  for (auto& m : ms.sorted()) out.push_back(target_of(m));
  return out;
}

bool msync_targets(const Membership& ms, const std::string* only, SessionRequest& req) {
  if (!only) {
    req.targets = every_member(ms);
    return true;
  }
  const Member* m = ms.find_by_name(*only);
  if (!m) return false;
  req.targets = {target_of(*m)};
  req.unicast = true;
  return true;
}

// Automatic pushes log a line per file at -d 1 (level 1), as msync -v would show.
SessionRequest propagation_request(const Membership& ms, std::vector<wire::Entry> entries) {
  SessionRequest req;
  req.flags = wire::kAuto;
  req.loglevel = 1;
  req.targets = every_member(ms);
  req.entries = std::move(entries);
  return req;
}

SessionRequest digest_request(std::vector<Target> targets, std::vector<wire::Entry> dirs) {
  SessionRequest req;
  req.flags = wire::kDigest;
  req.loglevel = 1;
  req.targets = std::move(targets);
  req.entries = std::move(dirs);
  return req;
}

SessionRequest catch_up_request(std::vector<Target> targets, std::vector<wire::Entry> entries) {
  SessionRequest req;
  req.flags = wire::kAuto | wire::kRecursive;
  req.loglevel = 1;
  req.targets = std::move(targets);
  req.entries = std::move(entries);
  return req;
}

}  // namespace makuo
