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

// The manifest runs at most manifest_ahead entries ahead of what a receiver still waits for:
// a push of ten times that many files completes, and no receiver holds all of it at once.
TEST(Session, APushLargerThanTheManifestWindowIsHeldAWindowAtATime) {
  SessionTuning t;
  t.manifest_ahead = 200;
  Sim sim(3, {}, t);
  const size_t files = 10 * t.manifest_ahead;
  for (size_t d = 0; d < files / 100; ++d)
    for (size_t f = 0; f < 100; ++f)
      write_file(sim.node(0).base / ("d" + std::to_string(d)) / std::to_string(f), 8, f);
  auto out = push(sim);
  size_t peak = 0;
  ASSERT_TRUE(sim.run_until(
      [&] {
        for (size_t i = 1; i < 3; ++i)
          peak = std::max(peak, sim.node(i).engine->recv_memory().used());
        return out->done;
      },
      600s));
  EXPECT_TRUE(out->ok);
  auto want = tree(sim.node(0).base);
  for (size_t i = 1; i < 3; ++i) EXPECT_EQ(tree(sim.node(i).base), want) << "node " << i;
  // Every entry held at once would be ~500 bytes each; a window and the answers are less.
  EXPECT_LT(peak, files * 500 / 2);
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

TEST(Session, AReceiverThatAnswersButGetsNowhereIsDroppedAndTheOthersFinish) {
  SessionTuning t;
  t.target_timeout = 2s;
  Sim sim(3, SimOptions{.starve = 2}, t);
  make_tree(sim.node(0).base);
  auto out = push(sim);
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_FALSE(out->ok);
  EXPECT_TRUE(has_line(*out, "n2 answered but made no progress for 2s"));
  auto n1 = tree(sim.node(1).base);
  EXPECT_EQ(n1, tree(sim.node(0).base));  // the other receiver was not held back
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

wire::Hash128 hash_of(const fs::path& p) {
  Fd f(open(p.c_str(), O_RDONLY | O_CLOEXEC));
  Hasher h;
  EXPECT_EQ(hash_fd(f.get(), 0, h), 0);
  return h.digest();
}

void set_mtime(const fs::path& p, time_t sec) {
  struct timespec t[2] = {{0, UTIME_OMIT}, {sec, 0}};
  utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW);
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  lstat(p.c_str(), &st);
  return st;
}

// Node `node` records path as changed there, as AutoPush does before it pushes: the entry it
// would send, with its version.
wire::Entry record(Sim& sim, size_t node, const std::string& p) {
  auto& n = sim.node(node);
  struct stat st;
  wire::Entry e;
  if (lstat((n.base / p).c_str(), &st) == 0) {
    e = entry_from_stat(st, p);
    if (S_ISREG(st.st_mode)) e.hash = hash_of(n.base / p);
  } else {
    e.kind = wire::Kind::Absent;
    e.path = p;
  }
  EXPECT_TRUE(n.index->note_local(e, "n" + std::to_string(node), n.clock->tick(), sim.wall_ns()));
  return e;
}

// A push of recorded changes from node `from`, as AutoPush makes it.
std::shared_ptr<Outcome> push_auto(Sim& sim, const std::vector<std::string>& paths,
                                   size_t from = 0) {
  SessionRequest req;
  req.flags = wire::kAuto;
  req.loglevel = 9;
  for (auto& p : paths) req.entries.push_back(record(sim, from, p));
  return start(sim, std::move(req), from);
}

// The version node `node`'s index holds for p.
PathVersion version_at(Sim& sim, size_t node, const std::string& p) {
  return sim.node(node).index->version_at(p);
}

TEST(Session, AnAutomaticPushReplacesWhatItsVersionDescendsFromWhateverTheMtimes) {
  Sim sim(3, SimOptions{.index = true});
  auto b0 = sim.node(0).base, b1 = sim.node(1).base;
  write_file(b0 / "f", 100, 1);
  set_mtime(b0 / "f", 1900000000);  // dated 2030
  auto first = push_auto(sim, {"f"});
  ASSERT_TRUE(sim.run_until([&] { return first->done; }, 30s));
  ASSERT_EQ(read_file(b1 / "f"), read_file(b0 / "f"));
  // Node 0 rolls back to older content with an older mtime (rsync -a of an old release).
  write_file(b0 / "f", 50, 2);
  set_mtime(b0 / "f", 1000000000);  // dated 2001
  auto rollback = push_auto(sim, {"f"});
  ASSERT_TRUE(sim.run_until([&] { return rollback->done; }, 30s));
  EXPECT_TRUE(rollback->ok);
  for (size_t i : {1, 2}) {
    EXPECT_EQ(read_file(sim.node(i).base / "f"), read_file(b0 / "f")) << i;
    EXPECT_EQ(version_at(sim, i, "f"), version_at(sim, 0, "f")) << i;
  }
}

TEST(Session, AStaleVersionIsRefusedAndTheReceiverKeepsItsOwn) {
  Sim sim(3, SimOptions{.index = true});
  auto b0 = sim.node(0).base, b1 = sim.node(1).base;
  write_file(b0 / "f", 100, 1);
  auto first = push_auto(sim, {"f"});
  ASSERT_TRUE(sim.run_until([&] { return first->done; }, 30s));
  PathVersion v1 = version_at(sim, 0, "f");
  // Node 1 edits on top of it, with an mtime older than node 0's.
  write_file(b1 / "f", 200, 2);
  set_mtime(b1 / "f", 1000);
  record(sim, 1, "f");
  std::string edit = read_file(b1 / "f");
  // Node 0 pushes its version again (a catch-up, say): node 1 keeps its edit.
  SessionRequest again;
  again.flags = wire::kAuto;
  again.loglevel = 9;
  wire::Entry old = entry_from_stat(stat_of(b0 / "f"), "f");
  old.hash = hash_of(b0 / "f");
  old.version = v1;
  again.entries.push_back(old);
  auto out = start(sim, std::move(again));
  ASSERT_TRUE(sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(has_line(*out, "kept   n1:f"));
  EXPECT_EQ(read_file(b1 / "f"), edit);
  EXPECT_EQ(read_file(sim.node(2).base / "f"), read_file(b0 / "f"));
  // msync is authoritative: the sender's state wins, with a version on top of both.
  SessionRequest req;
  req.loglevel = 9;
  req.entries.push_back(old);
  req.entries.back().version = bump(v1, "n0", sim.node(0).clock->tick());
  auto authoritative = start(sim, std::move(req));
  ASSERT_TRUE(sim.run_until([&] { return authoritative->done; }, 30s));
  EXPECT_EQ(read_file(b1 / "f"), read_file(b0 / "f"));
  EXPECT_EQ(compare(version_at(sim, 1, "f").vv, version_at(sim, 0, "f").vv), Order::After);
}

TEST(Session, AChangeOfMetadataAloneIsAppliedInPlace) {
  Sim sim(2, SimOptions{.index = true});
  auto b0 = sim.node(0).base, b1 = sim.node(1).base;
  write_file(b0 / "f", 100000, 1);
  auto first = push_auto(sim, {"f"});
  ASSERT_TRUE(sim.run_until([&] { return first->done; }, 30s));
  uint64_t written = sim.node(1).engine->recv_stats().bytes_written;
  ino_t ino = stat_of(b1 / "f").st_ino;
  chmod((b0 / "f").c_str(), 0600);
  set_mtime(b0 / "f", 1000000000);  // touch -d 2001
  auto meta = push_auto(sim, {"f"});
  ASSERT_TRUE(sim.run_until([&] { return meta->done; }, 30s));
  EXPECT_TRUE(has_line(*meta, "update n1:f"));
  EXPECT_EQ(stat_of(b1 / "f").st_ino, ino);
  EXPECT_EQ(stat_of(b1 / "f").st_mode & 07777, 0600u);
  EXPECT_EQ(stat_of(b1 / "f").st_mtim.tv_sec, 1000000000);
  EXPECT_EQ(sim.node(1).engine->recv_stats().bytes_written, written);
  EXPECT_EQ(version_at(sim, 1, "f"), version_at(sim, 0, "f"));
}

// Node 1 wrote f, and node 0 wrote f later without having seen node 1's: concurrent versions,
// node 0's made later.
struct ConflictSetup {
  Sim sim;
  fs::path b0, b1;
  explicit ConflictSetup(bool keep) : sim(2, SimOptions{.index = true, .keep_conflicts = keep}) {
    b0 = sim.node(0).base;
    b1 = sim.node(1).base;
    write_file(b1 / "f", 100, 1);
    set_mtime(b1 / "f", 2000);  // a later mtime than node 0's: it decides nothing
    record(sim, 1, "f");
    sim.run_for(1s);
    write_file(b0 / "f", 200, 2);
    set_mtime(b0 / "f", 1000);
  }
};

TEST(Session, AConcurrentWriteThatLosesIsAConflictKeptAside) {
  ConflictSetup c(true);
  int64_t mine = int64_t(version_at(c.sim, 1, "f").clock());
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_TRUE(out->ok);
  EXPECT_EQ(fs::file_size(c.b1 / "f"), 200u);  // the later change wins
  std::string copy = conflict_name("f", "n1", mine);
  EXPECT_EQ(copy.rfind("f.makuo-conflict-n1-20261201T", 0), 0u) << copy;
  ASSERT_TRUE(fs::exists(c.b1 / copy));
  EXPECT_EQ(fs::file_size(c.b1 / copy), 100u);  // node 1's own version, aside
  EXPECT_EQ(c.sim.node(1).engine->recv_stats().conflicts, 1u);
  EXPECT_EQ(c.sim.node(1).conflict_copies, std::vector<std::string>{copy});
  // The index now holds node 0's version.
  EXPECT_EQ(version_at(c.sim, 1, "f"), version_at(c.sim, 0, "f"));
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
  c.sim.node(0).index->put("f", *c.sim.node(1).index->find("f"));
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_EQ(fs::file_size(c.b1 / "f"), 200u);
  EXPECT_EQ(c.sim.node(1).engine->recv_stats().conflicts, 0u);
  EXPECT_TRUE(c.sim.node(1).conflict_copies.empty());
}

TEST(Session, AConcurrentDeletionMadeLaterKeepsOursAside) {
  ConflictSetup c(true);
  // Node 0 had a version of f that node 1 never saw, and deletes it.
  IndexEntry other = index_entry_of(stat_of(c.b0 / "f"));
  other.version = bump({}, "n0", 1);
  c.sim.node(0).index->put("f", other);
  fs::remove(c.b0 / "f");
  auto out = push_auto(c.sim, {"f"});
  ASSERT_TRUE(c.sim.run_until([&] { return out->done; }, 30s));
  EXPECT_FALSE(fs::exists(c.b1 / "f"));
  size_t copies = 0;
  for (auto& de : fs::directory_iterator(c.b1))
    copies += de.path().filename().string().rfind("f.makuo-conflict-n1-", 0) == 0;
  EXPECT_EQ(copies, 1u);
  EXPECT_EQ(c.sim.node(1).engine->recv_stats().conflicts, 1u);
  ASSERT_NE(c.sim.node(1).index->tombstone("f"), nullptr);
}

TEST(Session, OfConcurrentVersionsTheLaterStaysWhereverAndWhicheverCommitsLast) {
  // Nodes 0 and 2 write f apart, node 2 later; both push at once. Node 1 ends with node 2's
  // although node 0's larger file is committed last; node 0 takes node 2's.
  Sim sim(3, SimOptions{.index = true});
  fs::path b0 = sim.node(0).base, b1 = sim.node(1).base, b2 = sim.node(2).base;
  write_file(b0 / "f", 300000, 1);
  write_file(b2 / "f", 100, 2);
  set_mtime(b2 / "f", 500);  // older mtime, later change
  auto from0 = push_auto(sim, {"f"}, 0);
  sim.node(2).clock->tick();
  auto from2 = push_auto(sim, {"f"}, 2);
  ASSERT_TRUE(sim.run_until([&] { return from0->done && from2->done; }, 30s));
  EXPECT_TRUE(has_line(*from0, "kept   n2:f"));
  std::string winner = read_file(b2 / "f");
  EXPECT_TRUE(read_file(b1 / "f") == winner);
  EXPECT_TRUE(read_file(b0 / "f") == winner);
  EXPECT_EQ(version_at(sim, 1, "f"), version_at(sim, 2, "f"));
  EXPECT_EQ(version_at(sim, 0, "f"), version_at(sim, 2, "f"));
}

// Node 1 needs node 0's f, and while it arrives f is written on node 1: the local write was
// made after node 0's (which it never saw): it is judged again at the rename and stays.
TEST(Session, ALocalWriteDuringTheTransferIsJudgedAgainAndStays) {
  ConflictSetup c(false);
  write_file(c.b0 / "f", 300000, 2);
  auto out = push_auto(c.sim, {"f"});
  auto receiving = [&] {
    for (auto& de : fs::directory_iterator(c.b1))
      if (de.path().filename().string().rfind(".makuo-tmp-", 0) == 0) return true;
    return false;
  };
  ASSERT_TRUE(c.sim.run_until(receiving, 30s));
  write_file(c.b1 / "f", 300000, 3);
  set_mtime(c.b1 / "f", 1);  // dated 1970: it decides nothing
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
  wire::Bytes hb, b;
  wire::encode(hb, 0xbad, wire::Type::Heartbeat, wire::Announce{"evil", "test"});
  rx.engine->on_packet(hb, {0x0a0000fe, 1}, sim.now());  // a member, or nothing is taken at all
  wire::encode(b, 0xbad, m);
  rx.engine->on_packet(b, {0x0a0000fe, 1}, sim.now());
  sim.run_for(100ms);
  EXPECT_EQ(tree(outside), before_outside);
  EXPECT_EQ(tree(rx.base), before_base);
  EXPECT_EQ(rx.engine->recv_stats().files_failed, cases.size());
}

}  // namespace
}  // namespace makuo::test
