#include "sync/receive_judge.hpp"

#include <tuple>

namespace makuo {
namespace {

bool owner_equal(const wire::Entry& in, const wire::Entry& here, const JudgeContext& ctx) {
  if (!ctx.privileged) return true;  // we cannot give owners: they are not ours to compare
  auto [uid, gid] = ctx.local_owner ? ctx.local_owner(in) : std::pair{in.uid, in.gid};
  return here.uid == uid && here.gid == gid;
}

// The same state; relaxed: but for the mtime of a directory or a symlink, which say nothing
// of what they hold (concurrent pushes into one directory leave its mtime differing), or of a
// file whose content is known to be the same on both sides.
bool same(const wire::Entry& in, const std::optional<wire::Entry>& here, const JudgeContext& ctx,
          bool relaxed) {
  if (in.kind == wire::Kind::Absent) return !here;
  if (!here || here->kind != in.kind) return false;
  const wire::Entry& h = *here;
  if (h.mode != in.mode || !owner_equal(in, h, ctx)) return false;
  switch (in.kind) {
    case wire::Kind::File:
      if (h.size != in.size || (h.hash && in.hash && *h.hash != *in.hash)) return false;
      return h.mtime_ns == in.mtime_ns || (relaxed && h.hash && in.hash);
    case wire::Kind::Dir:
      return relaxed || h.mtime_ns == in.mtime_ns;
    case wire::Kind::Symlink:
      return h.link == in.link;
    case wire::Kind::Fifo:
    case wire::Kind::CharDev:
    case wire::Kind::BlockDev:
      return h.rdev == in.rdev && h.mtime_ns == in.mtime_ns;
    case wire::Kind::HardLink:
    case wire::Kind::Absent:
      return false;
  }
  return false;
}

// Two states whose versions cannot order them (the same change clock and node, or no version
// at all): a fixed order of the states themselves, which both sides see alike (both know the
// content hash when the sizes are equal: needs_local_hash). The mtime comes last: it decides
// only between states that are otherwise the same.
int state_order(const wire::Entry& in, const std::optional<wire::Entry>& here) {
  if (!here) return in.kind == wire::Kind::Absent ? 0 : 1;
  if (in.kind == wire::Kind::Absent) return -1;
  const wire::Entry& h = *here;
  auto key = [](const wire::Entry& e) {
    return std::tie(e.kind, e.size, e.link, e.rdev, e.mode, e.uid, e.gid, e.hash, e.mtime_ns);
  };
  if (key(in) == key(h)) return 0;
  return key(in) > key(h) ? 1 : -1;
}

}  // namespace

bool identical(const wire::Entry& in, const std::optional<wire::Entry>& here,
               const JudgeContext& ctx) {
  return same(in, here, ctx, false);
}

bool needs_local_hash(const wire::Entry& in, const Held& here) {
  if (!here.state || here.state->kind != wire::Kind::File || here.state->hash) return false;
  if (in.kind != wire::Kind::File || !in.hash || here.state->size != in.size) return false;
  switch (compare(in.version.vv, here.version.vv)) {
    case Order::Before:
      return false;  // ours stays, whatever it holds
    case Order::After:
      return here.state->mtime_ns == in.mtime_ns;  // is it already there?
    default:
      return true;  // the states themselves may have to be ordered
  }
}

Judgement judge(const wire::Entry& in, const Held& here, const JudgeContext& ctx) {
  Judgement j;
  j.order = compare(in.version.vv, here.version.vv);
  bool exact = same(in, here.state, ctx, false);
  if (ctx.authoritative) {
    j.result.vv = VersionVector::merge(in.version.vv, here.version.vv);
    j.result.origin = in.version.origin.empty() ? here.version.origin : in.version.origin;
    j.verdict = exact ? Verdict::Same : Verdict::Apply;
    return j;
  }
  if (!here.state && here.version.vv.empty()) {
    // Nothing here, and no deletion known: nothing to weigh the incoming version against.
    j.verdict = in.kind == wire::Kind::Absent ? Verdict::Same : Verdict::Apply;
    j.result = in.version;
    return j;
  }
  switch (j.order) {
    case Order::After:
      j.verdict = exact ? Verdict::Same : Verdict::Apply;
      j.result = in.version;
      return j;
    case Order::Before:
      j.verdict = Verdict::Keep;
      j.push_back = true;
      j.result = here.version;
      return j;
    case Order::Equal:
      if (exact) {
        j.verdict = Verdict::Same;
        j.result = here.version;
        return j;
      }
      break;  // one version, two states (no version at all, or a change the index missed)
    case Order::Concurrent:
      break;
  }
  int w = concurrent_winner(in.version, here.version);
  if (same(in, here.state, ctx, true)) {
    // Written apart, to the same state (an mtime aside): no conflict; we hold both histories
    // from now on, and the winner's mtime.
    if (w == 0) w = state_order(in, here.state);
    j.result.vv = VersionVector::merge(in.version.vv, here.version.vv);
    j.result.origin = w >= 0 ? in.version.origin : here.version.origin;
    j.verdict = exact || w <= 0 ? Verdict::Same : Verdict::Apply;
    j.push_back = j.result.vv != in.version.vv && in.kind != wire::Kind::Dir;
    return j;
  }
  j.conflict = true;
  if (w == 0) w = state_order(in, here.state);
  if (w > 0) {
    j.verdict = Verdict::Apply;
    j.result = in.version;
    j.lost_here = here.version.origin == ctx.self || here.version.origin.empty();
  } else {
    j.verdict = Verdict::Keep;
    j.push_back = true;
    j.result = here.version;
  }
  return j;
}

}  // namespace makuo
