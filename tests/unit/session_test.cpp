// Push sessions end to end over the simulated LAN: loss, reordering, duplication, a dead
// member, dry run, check and dsync, with a fake clock and real temporary directories.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <random>

#include "sim.hpp"
#include "sync/fsops.hpp"
#include "sync/hash.hpp"
#include "sync/recv_session.hpp"
#include "sync/scan.hpp"

namespace makuo::test {
namespace {

void write_file(const fs::path& p, size_t size, uint32_t seed) {
  fs::create_directories(p.parent_path());
  std::mt19937 r(seed);
  std::string s(size, '\0');
  for (auto& c : s) c = char(r());
  std::ofstream(p, std::ios::binary) << s;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// path -> "type mode size mtime content" for everything below root (our temporaries excluded)
std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> m;
  for (auto& de : fs::recursive_directory_iterator(root)) {
    std::string rel = fs::relative(de.path(), root).string();
    if (de.path().filename().string().rfind(".makuo-tmp-", 0) == 0) {
      m[rel] = "TEMPORARY LEFT BEHIND";
      continue;
    }
    struct stat st;
    lstat(de.path().c_str(), &st);
    std::string v = std::to_string(st.st_mode) + " ";
    if (S_ISREG(st.st_mode))
      v += std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + " " + read_file(de.path());
    else if (S_ISLNK(st.st_mode))
      v += fs::read_symlink(de.path()).string();
    else
      v += std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    m[rel] = v;
  }
  return m;
}

void make_tree(const fs::path& b) {
  write_file(b / "empty", 0, 1);
  write_file(b / "one", 1, 2);
  write_file(b / "a/exact", 1372, 3);
  write_file(b / "a/plus1", 1373, 4);
  write_file(b / "a/b/big", 1 << 20, 5);
  write_file(b / "a/b/c/small", 5000, 6);
  fs::create_directories(b / "emptydir");
  fs::create_symlink("../one", b / "a/link");
  fs::create_hard_link(b / "one", b / "a/hard");
  chmod((b / "a/exact").c_str(), 0600);
  chmod((b / "a/b").c_str(), 0750);
}

struct Outcome {
  bool done = false, ok = false;
  std::vector<std::string> lines;
};

// Node `from` pushes req to every member; the outcome fills in as the simulation runs.
std::shared_ptr<Outcome> start(Sim& sim, SessionRequest req, size_t from = 0) {
  auto& n0 = sim.node(from);
  for (auto& m : n0.engine->members().sorted()) req.targets.push_back({m.id, m.name, m.ep});
  auto out = std::make_shared<Outcome>();
  SessionSink sink;
  sink.line = [out](int, const std::string& l) { out->lines.push_back(l); };
  sink.done = [out](bool ok) {
    out->done = true;
    out->ok = ok;
  };
  n0.engine->start_session(std::move(req), std::move(sink), sim.now());
  return out;
}

std::shared_ptr<Outcome> push(Sim& sim, uint16_t flags = 0, std::string root = "",
                              bool recursive = true) {
  auto& n0 = sim.node(0);
  ScanOptions so;
  so.root = root;
  so.recursive = recursive || (flags & wire::kDsync);
  so.with_hash = flags & wire::kCheck;
  so.base_path = n0.base.string();
  SessionRequest req;
  req.flags = flags;
  req.entries = scan(n0.basefd, so).entries;
  req.loglevel = 9;
  req.root = root;
  return start(sim, std::move(req));
}

bool has_line(const Outcome& o, const std::string& s) {
  for (auto& l : o.lines)
    if (l.find(s) != std::string::npos) return true;
  return false;
}

TEST(Session, PushReachesEveryMember) {
  Sim sim(4, {});
  ASSERT_EQ(sim.node(0).engine->members().size(), 3u);
  make_tree(sim.node(0).base);
  auto out = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(out->ok);
  auto want = tree(sim.node(0).base);
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(tree(sim.node(i).base), want) << "node " << i;
  EXPECT_EQ(fs::hard_link_count(sim.node(2).base / "a/hard"), 2u);
}

TEST(Session, SurvivesLossReorderingAndDuplication) {
  Sim sim(4, {});
  sim.options().loss = 0.10;
  sim.options().duplicate = 0.05;
  sim.options().jitter = 2ms;
  make_tree(sim.node(0).base);
  for (int i = 0; i < 50; ++i) write_file(sim.node(0).base / "many" / std::to_string(i), 3000, i);
  auto out = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 60s));
  EXPECT_TRUE(out->ok);
  auto want = tree(sim.node(0).base);
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(tree(sim.node(i).base), want) << "node " << i;
}

TEST(Session, CodedRepairsServeSeveralReceiversAtOnce) {
  // Each of 8 receivers loses its own 3 %: plain multicast repairs would carry the union
  // (about 22 % of the blocks); one XOR of blocks that different receivers miss repairs each.
  SimOptions o;
  o.loss = 0.03;
  Sim sim(9, o);
  write_file(sim.node(0).base / "big", 4 << 20, 5);
  auto out = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 60s));
  EXPECT_TRUE(out->ok);
  auto want = tree(sim.node(0).base);
  uint64_t rebuilt = 0;
  for (size_t i = 1; i < 9; ++i) {
    EXPECT_EQ(tree(sim.node(i).base), want) << "node " << i;
    rebuilt += sim.node(i).engine->recv_stats().coded_rebuilt;
  }
  const Engine& sender = *sim.node(0).engine;
  uint64_t blocks = (4 << 20) / SessionTuning{}.block_size;
  EXPECT_GT(sender.coded_repairs(), 0u);
  EXPECT_GT(rebuilt, sender.coded_repairs()) << "a coded repair serves more than one receiver";
  EXPECT_LT(sender.repair_blocks(), blocks * 12 / 100) << "well below the union of losses";
}

TEST(Session, TheLastLossesAreAskedForAsSoonAsTheSenderIsIdle) {
  // Losses at the end of a file (or of a repair round) are found only by a poll. Waiting for
  // the poll tick (20 ms) made this push take 65 ms of simulated time; an idle sender polls
  // right after its last block instead.
  SimOptions o;
  o.loss = 0.25;
  o.latency = 100us;
  Sim sim(2, o);
  write_file(sim.node(0).base / "f", 256 << 10, 7);
  TimePoint t0 = sim.now();
  auto out = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(out->ok);
  EXPECT_EQ(tree(sim.node(1).base), tree(sim.node(0).base));
  EXPECT_GT(sim.node(0).engine->repair_blocks(), 0u);
  EXPECT_LT(sim.now() - t0, 2 * SessionTuning{}.poll_interval)
      << "repair rounds waited for poll ticks";
}

TEST(Session, RepairsInterleaveWithAPacedFirstPass) {
  // Paced sending spreads the first pass over many polls, so repairs of earlier blocks are
  // sent while a file is half-way through its first pass.
  SimOptions o;
  o.loss = 0.05;
  o.rate = 20'000'000;
  Sim sim(3, o);
  write_file(sim.node(0).base / "big", 1 << 20, 11);
  for (int i = 0; i < 300; ++i) write_file(sim.node(0).base / "s" / std::to_string(i), 5000, i);
  auto out = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 60s));
  EXPECT_TRUE(out->ok);
  auto want = tree(sim.node(0).base);
  for (size_t i = 1; i < 3; ++i) EXPECT_EQ(tree(sim.node(i).base), want) << "node " << i;
}

TEST(Session, AFullSocketDoesNotSilenceThePolls) {
  // The sender's socket is always full: if polls waited for it to drain, no receiver would
  // answer for the whole (loss-free) push and all would be dropped as dead.
  SimOptions o;
  o.sends_per_step = 2;  // a few hundred ms of simulated time for this file
  SessionTuning t;
  t.target_timeout = 100ms;
  Sim sim(3, o, t);
  write_file(sim.node(0).base / "f", 20'000'000, 3);
  auto out = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 60s));
  EXPECT_TRUE(out->ok) << (out->lines.empty() ? "" : out->lines.front());
  EXPECT_EQ(read_file(sim.node(1).base / "f"), read_file(sim.node(0).base / "f"));
}

TEST(Session, DeadMemberIsDroppedAndTheOthersFinish) {
  SessionTuning t;
  t.target_timeout = 5s;
  Sim sim(4, {}, t);
  write_file(sim.node(0).base / "f", 200000, 9);
  auto out = push(sim);
  sim.kill(3);
  TimePoint start = sim.now();
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_LE(sim.now() - start, 6s);  // membership expiry (3.5 s) drops it first
  EXPECT_FALSE(out->ok);
  EXPECT_TRUE(has_line(*out, "n3"));
  EXPECT_EQ(read_file(sim.node(1).base / "f"), read_file(sim.node(0).base / "f"));
  EXPECT_EQ(read_file(sim.node(2).base / "f"), read_file(sim.node(0).base / "f"));
  EXPECT_FALSE(fs::exists(sim.node(3).base / "f"));
}

TEST(Session, UnchangedFilesAreNotSentAgain) {
  Sim sim(3, {});
  make_tree(sim.node(0).base);
  auto first = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return first->done; }, 30s));
  uint64_t written = sim.node(1).engine->recv_stats().bytes_written;
  auto second = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return second->done; }, 30s));
  EXPECT_TRUE(second->ok);
  EXPECT_EQ(sim.node(1).engine->recv_stats().bytes_written, written);
  EXPECT_TRUE(has_line(*second, "skip   n1:a/b/big"));
}

TEST(Session, AutomaticPushesLetTheLastWriterWin) {
  Sim sim(3, {});
  auto b0 = sim.node(0).base, b1 = sim.node(1).base;
  write_file(b0 / "f", 100, 1);
  write_file(b1 / "f", 200, 2);  // node 1 wrote it later
  struct timespec older[2] = {{0, UTIME_OMIT}, {1000, 0}}, newer[2] = {{0, UTIME_OMIT}, {2000, 0}};
  utimensat(AT_FDCWD, (b0 / "f").c_str(), older, 0);
  utimensat(AT_FDCWD, (b1 / "f").c_str(), newer, 0);
  auto out = push(sim, wire::kAuto);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(out->ok);
  EXPECT_EQ(fs::file_size(b1 / "f"), 200u);  // kept
  EXPECT_TRUE(has_line(*out, "kept   n1:f (newer there"));
  EXPECT_EQ(fs::file_size(sim.node(2).base / "f"), 100u);  // node 2 had nothing: it takes it
  auto authoritative = push(sim);                          // msync: the sender's version wins
  ASSERT_TRUE(sim.run_until([&] { return authoritative->done; }, 30s));
  EXPECT_EQ(fs::file_size(b1 / "f"), 100u);
}

wire::Hash128 hash_of(const fs::path& p) {
  Fd f(open(p.c_str(), O_RDONLY | O_CLOEXEC));
  Hasher h;
  EXPECT_EQ(hash_fd(f.get(), 0, h), 0);
  return h.digest();
}

// A push of recorded changes from node `from`: path as it is there now, annotated by its
// index as AutoPush does.
std::shared_ptr<Outcome> push_auto(Sim& sim, const std::vector<std::string>& paths,
                                   size_t from = 0) {
  auto& n0 = sim.node(from);
  SessionRequest req;
  req.flags = wire::kAuto;
  req.loglevel = 9;
  for (auto& p : paths) {
    struct stat st;
    wire::Entry e;
    if (lstat((n0.base / p).c_str(), &st) == 0) {
      e = entry_from_stat(st, p);
      if (S_ISREG(st.st_mode)) e.hash = hash_of(n0.base / p);  // before the index, as AutoPush
    } else {
      e.kind = wire::Kind::Absent;
      e.path = p;
      e.mtime_ns = 3000'000'000'000LL;
    }
    n0.index->note_local(e, "n" + std::to_string(from));
    req.entries.push_back(e);
  }
  return start(sim, std::move(req), from);
}

void set_mtime(const fs::path& p, time_t sec) {
  struct timespec t[2] = {{0, UTIME_OMIT}, {sec, 0}};
  utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW);
}

// Node 1 wrote f itself (its index says so); node 0 pushes a later version of f.
struct ConflictSetup {
  Sim sim;
  fs::path b0, b1;
  explicit ConflictSetup(bool keep) : sim(2, SimOptions{.index = true, .keep_conflicts = keep}) {
    b0 = sim.node(0).base;
    b1 = sim.node(1).base;
    write_file(b1 / "f", 100, 1);
    set_mtime(b1 / "f", 1000);
    wire::Entry mine = entry_from_stat(stat_of(b1 / "f"), "f");
    sim.node(1).index->note_local(mine, "n1");  // n1 pushed it: written there
    write_file(b0 / "f", 200, 2);
    set_mtime(b0 / "f", 2000);
  }
  static struct stat stat_of(const fs::path& p) {
    struct stat st;
    lstat(p.c_str(), &st);
    return st;
  }
};

TEST(Session, AConcurrentWriteThatLosesIsAConflictKeptAside) {
  ConflictSetup c(true);
  auto out = push_auto(c.sim, {"f"});  // node 0's version never saw node 1's
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(out->ok);
  EXPECT_EQ(fs::file_size(c.b1 / "f"), 200u);  // the later write wins
  std::string copy = conflict_name("f", "n1", 1000'000'000'000LL);
  EXPECT_EQ(copy, "f.makuo-conflict-n1-19700101T001640Z");
  ASSERT_TRUE(fs::exists(c.b1 / copy));
  EXPECT_EQ(fs::file_size(c.b1 / copy), 100u);  // node 1's own version, aside
  EXPECT_EQ(c.sim.node(1).engine->recv_stats().conflicts, 1u);
  EXPECT_EQ(c.sim.node(1).conflict_copies, std::vector<std::string>{copy});
  // The index now knows f as node 0's version.
  const IndexEntry* ie = c.sim.node(1).index->find("f");
  ASSERT_NE(ie, nullptr);
  EXPECT_EQ(ie->origin, "n0");
  EXPECT_EQ(ie->size, 200u);
}

TEST(Session, AConflictIsOnlyLoggedWithoutKeepConflicts) {
  ConflictSetup c(false);
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_EQ(fs::file_size(c.b1 / "f"), 200u);
  EXPECT_EQ(c.sim.node(1).engine->recv_stats().conflicts, 1u);
  EXPECT_TRUE(c.sim.node(1).conflict_copies.empty());
  size_t n = 0;
  for (auto& de : fs::directory_iterator(c.b1)) n += de.path().filename() != "f";
  EXPECT_EQ(n, 0u);
}

TEST(Session, AVersionWrittenOnTopOfOursIsNoConflict) {
  ConflictSetup c(true);
  // Node 0 had node 1's version and wrote on top of it.
  IndexEntry had = index_entry_of(ConflictSetup::stat_of(c.b1 / "f"));
  had.origin = "n1";
  c.sim.node(0).index->put("f", had);
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_EQ(fs::file_size(c.b1 / "f"), 200u);
  EXPECT_EQ(c.sim.node(1).engine->recv_stats().conflicts, 0u);
  EXPECT_TRUE(c.sim.node(1).conflict_copies.empty());
}

TEST(Session, ALaterDeletionOfAConcurrentVersionKeepsItAside) {
  ConflictSetup c(true);
  fs::remove(c.b0 / "f");  // node 0 deletes a version that is not node 1's
  IndexEntry other = index_entry_of(ConflictSetup::stat_of(c.b1 / "f"));
  other.mtime_ns = 500'000'000'000LL;
  c.sim.node(0).index->put("f", other);
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_FALSE(fs::exists(c.b1 / "f"));
  std::string copy = conflict_name("f", "n1", 1000'000'000'000LL);
  EXPECT_TRUE(fs::exists(c.b1 / copy));
  EXPECT_EQ(c.sim.node(1).engine->recv_stats().conflicts, 1u);
}

TEST(Session, EqualMtimesAreDecidedByTheNodeName) {
  ConflictSetup c(true);
  set_mtime(c.b0 / "f", 1000);  // same tick as node 1's write
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_EQ(fs::file_size(c.b1 / "f"), 100u);  // "n1" > "n0": node 1's version stays
  EXPECT_TRUE(has_line(*out, "kept   n1:f"));
  EXPECT_EQ(c.sim.node(1).engine->recv_stats().conflicts, 0u);
}

TEST(Session, ATieWonByTheSenderReplacesContentOfTheSameSizeAndMtime) {
  ConflictSetup c(false);
  write_file(c.b0 / "f", 100, 3);  // as large as node 1's, other bytes, the same mtime
  set_mtime(c.b0 / "f", 1000);
  IndexEntry other = index_entry_of(ConflictSetup::stat_of(c.b1 / "f"));
  other.origin = "a";  // written on a node whose name sorts before "n0"
  c.sim.node(1).index->put("f", other);
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(out->ok);
  EXPECT_EQ(read_file(c.b1 / "f"), read_file(c.b0 / "f"));
  EXPECT_TRUE(has_line(*out, "update n1:f"));
}

// Two writes of one size within one mtime tick, where the writing node's index still holds the
// version the write replaced (received from node 1): the push is node 0's own version, which
// loses to node 1's by name and is answered as such, not taken for node 1's and left "same".
TEST(Session, ARewriteWithinTheTickOfAReceivedVersionIsOurs) {
  ConflictSetup c(false);
  write_file(c.b0 / "f", 100, 3);  // as large as node 1's, other bytes, the same mtime
  set_mtime(c.b0 / "f", 1000);
  IndexEntry had = *c.sim.node(1).index->find("f");  // node 1's version, as node 0 received it
  had.hash = hash_of(c.b1 / "f");
  c.sim.node(0).index->put("f", had);
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(has_line(*out, "kept   n1:f"));  // "n1" > "n0"
  const IndexEntry* ie = c.sim.node(0).index->find("f");
  ASSERT_NE(ie, nullptr);
  EXPECT_EQ(ie->origin, "n0");
  EXPECT_EQ(ie->hash, hash_of(c.b0 / "f"));
}

// The same seen from the receiver: its index holds a version of node 0's of this size and
// mtime, node 0 pushes another, and the file was written again here within the same tick: its
// content tells that it is node 1's own (which wins by name), not the indexed one (which the
// push would replace: its hash sorts first).
TEST(Session, AReceiverTellsItsOwnRewriteWithinATickByContent) {
  ConflictSetup c(false);
  write_file(c.b0 / "f", 100, 3);
  set_mtime(c.b0 / "f", 1000);
  IndexEntry theirs = index_entry_of(ConflictSetup::stat_of(c.b0 / "f"));
  theirs.origin = "n0";
  theirs.hash = wire::Hash128{};  // received from node 0, then rewritten here
  ASSERT_LT(*theirs.hash, hash_of(c.b0 / "f"));
  c.sim.node(1).index->put("f", theirs);
  std::string before = read_file(c.b1 / "f");
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(has_line(*out, "kept   n1:f"));
  EXPECT_EQ(read_file(c.b1 / "f"), before);
}

// Nodes 0 and 2 wrote f within one mtime tick and push it at once; node 1 judges both against
// its older f and needs both. Node 2's wins by name, so node 1 must end with it although node
// 0's larger file is committed last: that commit meets a version of its own mtime that came
// after its judgement, and loses the tie it is judged again on.
TEST(Session, OfTwoPushesOfOneTickTheWinnerStaysWhicheverCommitsLast) {
  Sim sim(3, SimOptions{.index = true});
  fs::path b0 = sim.node(0).base, b1 = sim.node(1).base, b2 = sim.node(2).base;
  write_file(b1 / "f", 10, 9);
  set_mtime(b1 / "f", 500);
  write_file(b0 / "f", 300000, 1);
  set_mtime(b0 / "f", 1000);
  write_file(b2 / "f", 100, 2);
  set_mtime(b2 / "f", 1000);
  std::string winner = read_file(b2 / "f");
  auto from2 = push_auto(sim, {"f"}, 2);
  auto from0 = push_auto(sim, {"f"}, 0);
  ASSERT_TRUE(sim.run_until([&] { return from0->done && from2->done; }, 30s));
  EXPECT_TRUE(has_line(*from0, "kept   n1:f"));
  EXPECT_TRUE(has_line(*from0, "kept   n2:f"));
  for (auto& b : {b0, b1, b2}) {
    EXPECT_EQ(fs::file_size(b / "f"), 100u) << b;
    EXPECT_TRUE(read_file(b / "f") == winner) << b;
  }
  const IndexEntry* ie = sim.node(1).index->find("f");
  ASSERT_NE(ie, nullptr);
  EXPECT_EQ(ie->origin, "n2");
}

// Node 1 needs node 0's f, and while it arrives f is written here within the same tick: the
// local write is node 1's own version, which wins by name ("n1" > "n0") and stays.
TEST(Session, ALocalWriteOfTheSameTickDuringTheTransferIsKept) {
  ConflictSetup c(false);
  write_file(c.b0 / "f", 300000, 2);
  set_mtime(c.b0 / "f", 2000);
  auto out = push_auto(c.sim, {"f"});
  auto receiving = [&] {
    for (auto& de : fs::directory_iterator(c.b1))
      if (de.path().filename().string().rfind(".makuo-tmp-", 0) == 0) return true;
    return false;
  };
  ASSERT_TRUE(c.sim.run_until(receiving, 30s));
  write_file(c.b1 / "f", 300000, 3);
  set_mtime(c.b1 / "f", 2000);
  std::string mine = read_file(c.b1 / "f");
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(has_line(*out, "kept   n1:f"));
  EXPECT_TRUE(read_file(c.b1 / "f") == mine);
}

TEST(Session, DryRunChangesNothing) {
  Sim sim(3, {});
  make_tree(sim.node(0).base);
  auto out = push(sim, wire::kDryRun);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(out->ok);
  EXPECT_TRUE(tree(sim.node(1).base).empty());
  EXPECT_TRUE(has_line(*out, "(dryrun) update n2:a/b/big"));
}

TEST(Session, CheckFindsDifferentContentOfEqualSize) {
  Sim sim(3, {});
  write_file(sim.node(0).base / "x", 10000, 1);
  write_file(sim.node(1).base / "x", 10000, 1);
  write_file(sim.node(2).base / "x", 10000, 2);
  auto out = push(sim, wire::kCheck);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_FALSE(out->ok);
  EXPECT_TRUE(has_line(*out, "n1: OK x"));
  EXPECT_TRUE(has_line(*out, "n2: NG x"));
}

TEST(Session, DsyncDeletesWhatTheSenderLacks) {
  Sim sim(3, {});
  write_file(sim.node(0).base / "d/keep", 10, 1);
  for (size_t i = 1; i < 3; ++i) {
    write_file(sim.node(i).base / "d/keep", 10, 1);
    write_file(sim.node(i).base / "d/extra", 10, 1);
    write_file(sim.node(i).base / "d/sub/deep", 10, 1);
    write_file(sim.node(i).base / "outside", 10, 1);
  }
  auto out = push(sim, wire::kDsync | wire::kRecursive, "d");
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(out->ok);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_TRUE(fs::exists(sim.node(i).base / "d/keep"));
    EXPECT_FALSE(fs::exists(sim.node(i).base / "d/extra"));
    EXPECT_FALSE(fs::exists(sim.node(i).base / "d/sub"));
    EXPECT_TRUE(fs::exists(sim.node(i).base / "outside"));  // not under the pushed path
  }
  EXPECT_TRUE(has_line(*out, "delete n1:d/extra"));
}

TEST(Session, HostilePathsAreRefusedAndNothingIsWritten) {
  Sim sim(2, {});
  auto& rx = sim.node(1);
  fs::path outside = rx.base.parent_path() / "outside";
  fs::create_directories(outside);
  write_file(outside / "victim", 10, 1);
  fs::create_directory_symlink(outside, rx.base / "sym");  // absolute, points outside
  fs::create_directory_symlink("..", rx.base / "up");      // relative, points outside
  auto before_outside = tree(outside);
  auto before_base = tree(rx.base);
  using K = wire::Kind;
  struct Case {
    K kind;
    std::string path, link;
    uint64_t size = 0;
  };
  std::vector<Case> cases = {
      {K::File, "../escape", ""},
      {K::File, "/etc/passwd", ""},
      {K::File, "a/../../x", ""},
      {K::File, "a/./b", ""},
      {K::File, "a//b", ""},
      {K::File, "", ""},
      {K::File, ".", ""},
      {K::File, "..", ""},
      {K::File, "a/..", ""},
      {K::File, "./a", ""},
      {K::File, "a/", ""},
      {K::File, std::string("a\0b", 3), ""},
      {K::File, std::string(5000, 'x'), ""},
      {K::File, std::string(256, 'n'), ""},
      {K::File, "sym/x", ""},
      {K::File, "sym/x", "", 5000},
      {K::File, "up/x", ""},
      {K::File, "sym/deeper/x", ""},
      {K::Dir, "sym/newdir", ""},
      {K::Symlink, "sym/evil", "/etc/passwd"},
      {K::Symlink, "ok-name", ""},
      {K::HardLink, "hl", "../outside/victim"},
      {K::HardLink, "hl2", "sym/victim"},
      {K::Absent, "sym/victim", ""},
      {K::Absent, "up/outside", ""},
      {K::Fifo, "sym/fifo", ""},
      {K::File, "huge", "", 1ull << 60},  // > free space
      {K::Symlink, std::string("nul\0name", 8), "x"},
  };
  ASSERT_GE(cases.size(), 25u);
  wire::Manifest m;
  m.sid = 77;
  m.block_size = 1372;
  m.total = uint32_t(cases.size());
  for (auto& c : cases) {
    wire::Entry e;
    e.kind = c.kind;
    e.mode = 0644;
    e.path = c.path;
    e.link = c.link;
    e.size = c.size;
    m.entries.push_back(e);
  }
  wire::Bytes b;
  wire::encode(b, 0xbad, m);
  rx.engine->on_packet(b, {0x0a0000fe, 1}, sim.now());
  sim.run_for(100ms);
  EXPECT_EQ(tree(outside), before_outside);
  EXPECT_EQ(tree(rx.base), before_base);
  EXPECT_EQ(rx.engine->recv_stats().files_failed, cases.size());
}

}  // namespace
}  // namespace makuo::test
