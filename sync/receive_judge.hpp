// The receiver's decision for one entry of a push: a pure function of what this node holds at
// the path (its state and version) and what arrives (the sender's state and version). The mtime
// decides nothing here; it is compared only as the metadata it is.
//
//  - An msync push (authoritative) is taken whatever we held; the version we then hold
//    descends from both ours and the sender's.
//  - Otherwise (automatic pushes, catch-up): a version that descends from ours replaces it; ours
//    stays when it descends from the incoming one, or is the same; two concurrent versions are
//    ordered by the clock of their latest change and then by the name of the node that made it
//    (concurrent_winner), the same way on every node. When they hold the same state there is
//    no conflict: both histories are merged. Otherwise the loser is a conflict, logged and kept
//    aside on the node that wrote it.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "sync/version_vector.hpp"
#include "sync/wire.hpp"

namespace makuo {

// What this node holds at the path.
struct Held {
  // The state on disk (kind, metadata, link target, rdev, content hash when known); nullopt:
  // nothing there.
  std::optional<wire::Entry> state;
  // Its version (local_version: a change made here and not yet recorded is bumped), or the
  // version of the deletion that left nothing there.
  PathVersion version;
};

struct JudgeContext {
  std::string self;            // this node's name
  bool authoritative = false;  // an msync push: it wins
  bool privileged = false;     // owners can be given, so they are compared
  // The incoming entry's owner as ids of this node (by name where the name is known here);
  // unset: its numeric ids.
  std::function<std::pair<uint32_t, uint32_t>(const wire::Entry&)> local_owner;
};

enum class Verdict {
  Apply,  // take the incoming state: data, metadata, a deletion
  Same,   // we already hold that state: nothing to write
  Keep,   // ours stays
};

struct Judgement {
  Verdict verdict = Verdict::Same;
  Order order = Order::Equal;  // the incoming version against ours
  // Concurrent versions of different states: the loser is lost (Apply: ours, Keep: theirs).
  bool conflict = false;
  // Ours lost, and it was written here (or nobody knows where): it is logged, and kept aside
  // with --keep-conflicts.
  bool lost_here = false;
  bool push_back = false;  // Keep (or Same after a merge): the sender lacks our version
  PathVersion result;      // the version we hold afterwards
};

Judgement judge(const wire::Entry& in, const Held& here, const JudgeContext& ctx);

// Whether judge() needs the content hash of our regular file to tell states apart (the
// incoming entry carries one, ours is unknown, and the versions do not order the two).
bool needs_local_hash(const wire::Entry& in, const Held& here);

// The same state in every replicated respect (a directory's mtime too).
bool identical(const wire::Entry& in, const std::optional<wire::Entry>& here,
               const JudgeContext& ctx);

}  // namespace makuo
