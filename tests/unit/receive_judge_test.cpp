// The receiver's decision table: (incoming descends, stale, equal, concurrent) x (file,
// directory, symlink, deletion) x (older, equal, future mtime). The mtime never changes the
// verdict; versions alone do.
#include "sync/receive_judge.hpp"

#include <gtest/gtest.h>

namespace makuo {
namespace {

constexpr int64_t kNow = 1'800'000'000'000'000'000;  // 2027
constexpr int64_t kHour = 3'600'000'000'000;

enum class Rel { Descends, Stale, Equal, Concurrent };
enum class Mtime { Older, Equal, Future };

const char* name(Rel r) {
  switch (r) {
    case Rel::Descends:
      return "descends";
    case Rel::Stale:
      return "stale";
    case Rel::Equal:
      return "equal";
    case Rel::Concurrent:
      return "concurrent";
  }
  return "?";
}

wire::Entry state(wire::Kind k, int64_t mtime, int variant) {
  wire::Entry e;
  e.kind = k;
  e.path = "p";
  e.mtime_ns = mtime;
  switch (k) {
    case wire::Kind::File:
      e.mode = 0644;
      e.size = 100 + uint64_t(variant);
      e.hash = wire::Hash128{uint8_t(variant)};
      break;
    case wire::Kind::Dir:
      e.mode = variant ? 0700 : 0755;
      break;
    case wire::Kind::Symlink:
      e.mode = 0777;
      e.link = "target" + std::to_string(variant);
      break;
    default:
      break;
  }
  return e;
}

struct Case {
  wire::Entry in;
  Held here;
};

// Ours: written here ("me") on top of a base version; theirs relates to it as rel says. The two
// states differ (unless the versions are equal), and their mtimes as mt says.
Case make(Rel rel, wire::Kind kind, Mtime mt, bool later_clock = true) {
  PathVersion base = bump({}, "origin", 100);
  PathVersion mine = bump(base, "me", 200);
  PathVersion theirs;
  switch (rel) {
    case Rel::Descends:
      theirs = bump(mine, "them", 300);
      break;
    case Rel::Stale:
      theirs = base;
      break;
    case Rel::Equal:
      theirs = mine;
      break;
    case Rel::Concurrent:
      theirs = bump(base, "them", later_clock ? 300 : 150);
      break;
  }
  int64_t here_mtime = kNow;
  int64_t in_mtime = mt == Mtime::Older    ? kNow - kHour
                     : mt == Mtime::Future ? kNow + 50 * kHour
                                           : kNow;
  wire::Kind here_kind = kind == wire::Kind::Absent ? wire::Kind::File : kind;
  Case c;
  c.here.state = state(here_kind, here_mtime, 0);
  c.here.version = mine;
  c.in = rel == Rel::Equal ? *c.here.state : state(kind, in_mtime, 1);
  c.in.version = theirs;
  return c;
}

JudgeContext ctx() {
  JudgeContext c;
  c.self = "me";
  return c;
}

TEST(ReceiveJudge, TheDecisionTable) {
  for (Rel rel : {Rel::Descends, Rel::Stale, Rel::Equal, Rel::Concurrent})
    for (wire::Kind kind :
         {wire::Kind::File, wire::Kind::Dir, wire::Kind::Symlink, wire::Kind::Absent})
      for (Mtime mt : {Mtime::Older, Mtime::Equal, Mtime::Future}) {
        Case c = make(rel, kind, mt);
        Judgement j = judge(c.in, c.here, ctx());
        std::string what = std::string(name(rel)) + " kind=" + std::to_string(int(kind)) +
                           " mtime=" + std::to_string(int(mt));
        switch (rel) {
          case Rel::Descends:  // the incoming version replaces ours
            EXPECT_EQ(j.verdict, Verdict::Apply) << what;
            EXPECT_FALSE(j.conflict) << what;
            EXPECT_EQ(j.result, c.in.version) << what;
            break;
          case Rel::Stale:  // ours descends from it: ours stays, and the sender gets it
            EXPECT_EQ(j.verdict, Verdict::Keep) << what;
            EXPECT_TRUE(j.push_back) << what;
            EXPECT_FALSE(j.conflict) << what;
            EXPECT_EQ(j.result, c.here.version) << what;
            break;
          case Rel::Equal:  // the same version: nothing to do
            EXPECT_EQ(j.verdict, Verdict::Same) << what;
            EXPECT_FALSE(j.push_back) << what;
            break;
          case Rel::Concurrent:  // theirs was made later (clock 300 against our 200): it wins
            EXPECT_EQ(j.verdict, Verdict::Apply) << what;
            EXPECT_TRUE(j.conflict) << what;
            EXPECT_TRUE(j.lost_here) << what;
            EXPECT_EQ(j.result, c.in.version) << what;
            break;
        }
        if (rel == Rel::Concurrent) {  // and when ours is the later one, ours stays
          Case d = make(rel, kind, mt, false);
          Judgement k = judge(d.in, d.here, ctx());
          EXPECT_EQ(k.verdict, Verdict::Keep) << what;
          EXPECT_TRUE(k.conflict && k.push_back && !k.lost_here) << what;
        }
      }
}

TEST(ReceiveJudge, ConcurrentVersionsOfOneClockAreOrderedByNodeNameTheSameWayOnBothSides) {
  PathVersion a = bump({}, "alpha", 500), b = bump({}, "beta", 500);
  wire::Entry sa = state(wire::Kind::File, kNow, 1), sb = state(wire::Kind::File, kNow, 2);
  sa.version = a;
  sb.version = b;
  JudgeContext on_alpha = ctx(), on_beta = ctx();
  on_alpha.self = "alpha";
  on_beta.self = "beta";
  Judgement at_alpha = judge(sb, Held{sa, a}, on_alpha);  // beta's arrives at alpha
  Judgement at_beta = judge(sa, Held{sb, b}, on_beta);    // alpha's arrives at beta
  EXPECT_EQ(at_alpha.verdict, Verdict::Apply);
  EXPECT_TRUE(at_alpha.lost_here);
  EXPECT_EQ(at_beta.verdict, Verdict::Keep);
  EXPECT_EQ(at_alpha.result, at_beta.result);  // both end with beta's
}

TEST(ReceiveJudge, ConcurrentWritesOfTheSameStateMergeWithoutAConflict) {
  PathVersion a = bump({}, "alpha", 500), b = bump({}, "beta", 400);
  wire::Entry s = state(wire::Kind::File, kNow, 1);
  wire::Entry in = s;
  in.version = b;
  Judgement j = judge(in, Held{s, a}, ctx());
  EXPECT_EQ(j.verdict, Verdict::Same);
  EXPECT_FALSE(j.conflict);
  EXPECT_EQ(compare(j.result.vv, a.vv), Order::After);
  EXPECT_EQ(compare(j.result.vv, b.vv), Order::After);
  EXPECT_EQ(j.result.origin, "alpha");
  EXPECT_TRUE(j.push_back);  // the sender lacks the merge
  // Directories: their mtimes say nothing of what they hold.
  wire::Entry d = state(wire::Kind::Dir, kNow, 0), din = state(wire::Kind::Dir, kNow + kHour, 0);
  din.version = b;
  Judgement jd = judge(din, Held{d, a}, ctx());
  EXPECT_FALSE(jd.conflict);
  EXPECT_FALSE(jd.push_back);
}

TEST(ReceiveJudge, DeletionsAreVersionsToo) {
  PathVersion base = bump({}, "n1", 100);
  PathVersion deleted = bump(base, "n2", 200);
  wire::Entry old_write = state(wire::Kind::File, kNow + 50 * kHour, 1);  // dated 2030-ish
  old_write.version = base;
  // A deletion here of that version: an old version arriving later is refused, and the
  // sender is told.
  Judgement j = judge(old_write, Held{std::nullopt, deleted}, ctx());
  EXPECT_EQ(j.verdict, Verdict::Keep);
  EXPECT_TRUE(j.push_back);
  // A re-creation on top of the deletion is taken.
  wire::Entry again = state(wire::Kind::File, kNow - kHour, 2);
  again.version = bump(deleted, "n3", 300);
  EXPECT_EQ(judge(again, Held{std::nullopt, deleted}, ctx()).verdict, Verdict::Apply);
  // An edit concurrent with the deletion: the later change wins; a deletion made here that
  // loses is a conflict with nothing to keep.
  wire::Entry edit = state(wire::Kind::File, kNow, 3);
  edit.version = bump(base, "n3", 250);
  JudgeContext on_n2 = ctx();
  on_n2.self = "n2";
  Judgement k = judge(edit, Held{std::nullopt, deleted}, on_n2);
  EXPECT_EQ(k.verdict, Verdict::Apply);
  EXPECT_TRUE(k.conflict && k.lost_here);
  // Nothing here and nothing known: take it.
  EXPECT_EQ(judge(edit, Held{}, ctx()).verdict, Verdict::Apply);
  wire::Entry gone;
  gone.kind = wire::Kind::Absent;
  gone.version = deleted;
  EXPECT_EQ(judge(gone, Held{}, ctx()).verdict, Verdict::Same);
}

TEST(ReceiveJudge, AnMsyncPushIsTakenWhateverWeHeldAndDescendsFromBoth) {
  PathVersion mine = bump(bump({}, "n1", 100), "me", 900);
  wire::Entry here = state(wire::Kind::File, kNow, 0);
  wire::Entry in = state(wire::Kind::File, kNow - kHour, 1);
  in.version = bump(bump({}, "n1", 100), "sender", 500);
  JudgeContext c = ctx();
  c.authoritative = true;
  Judgement j = judge(in, Held{here, mine}, c);
  EXPECT_EQ(j.verdict, Verdict::Apply);
  EXPECT_FALSE(j.conflict);
  EXPECT_EQ(compare(j.result.vv, mine.vv), Order::After);
  EXPECT_EQ(compare(j.result.vv, in.version.vv), Order::After);
  wire::Entry same = here;
  same.version = in.version;
  EXPECT_EQ(judge(same, Held{here, mine}, c).verdict, Verdict::Same);
}

TEST(ReceiveJudge, TwoStatesOfNoVersionAreOrderedByTheStatesAlike) {
  wire::Entry a = state(wire::Kind::File, kNow, 1), b = state(wire::Kind::File, kNow, 2);
  Judgement at_a = judge(b, Held{a, {}}, ctx());
  Judgement at_b = judge(a, Held{b, {}}, ctx());
  EXPECT_TRUE(at_a.conflict && at_b.conflict);
  EXPECT_NE(at_a.verdict, at_b.verdict);  // one side takes, the other keeps: the same winner
  EXPECT_TRUE(at_a.verdict == Verdict::Apply ? at_a.lost_here : at_b.lost_here);
}

TEST(ReceiveJudge, OurHashIsAskedForOnlyWhenTheStatesCannotBeToldApartWithoutIt) {
  wire::Entry here = state(wire::Kind::File, kNow, 1);
  here.hash.reset();
  wire::Entry in = state(wire::Kind::File, kNow, 1);
  in.version = bump({}, "them", 5);
  EXPECT_TRUE(needs_local_hash(in, Held{here, {}}));
  in.size += 1;
  EXPECT_FALSE(needs_local_hash(in, Held{here, {}}));  // the sizes tell
  in.size -= 1;
  EXPECT_FALSE(needs_local_hash(in, Held{here, bump(in.version, "me", 9)}));  // ours descends
}

}  // namespace
}  // namespace makuo
