// How each kind of push is asked for: who it goes to and with which flags. msync's console
// commands, automatic propagation and catch-up all build their SessionRequest here, so that a
// new flag or a new kind of target is added in one place.
#pragma once
#include <string>
#include <vector>

#include "sync/membership.hpp"
#include "sync/send_session.hpp"

namespace makuo {

Target target_of(const Member& m);
// Every current member, by name.
std::vector<Target> every_member(const Membership& ms);

// msync send/sync/dsync/check (whose flags the command gives): to every member, or (-t) to
// the one named, directly. False: no member of that name.
bool msync_targets(const Membership& ms, const std::string* only, SessionRequest& req);
// Recorded changes (the journal, --watch, a receiver's "ours is newer"): to every member.
SessionRequest propagation_request(const Membership& ms, std::vector<wire::Entry> entries);
// Catch-up: the directory digests compared first, then what differs.
SessionRequest digest_request(std::vector<Target> targets, std::vector<wire::Entry> dirs);
SessionRequest catch_up_request(std::vector<Target> targets, std::vector<wire::Entry> entries);

}  // namespace makuo
