// CatchUp's rounds after failures: when they come, how their wait grows, when they end.
#include "sync/catch_up.hpp"

#include <gtest/gtest.h>

#include "sim.hpp"

namespace makuo::test {
namespace {

struct Fixture {
  Sim sim{2, {}};
  CatchUp cu;
  Target n1;

  static CatchUpConfig config(Sim& s) {
    CatchUpConfig c;
    c.basefd = s.node(0).basefd;
    c.base_path = s.node(0).base.string();
    c.retry = 2s;
    c.self = "n0";
    return c;
  }
  Fixture() : cu(config(sim), *sim.node(0).engine) {
    auto m = sim.node(0).engine->members().sorted();
    EXPECT_EQ(m.size(), 1u);
    n1 = {m.at(0).id, m.at(0).name, m.at(0).ep};
  }
  // The round run() began starts its push once its walk of the tree is back from the worker.
  bool started() {
    bool s = false;
    sim.run_until([&] { return s = s || cu.take_started(); }, 1s);
    return s;
  }
  // Runs the simulated LAN and CatchUp together until the round under way is over.
  bool finish_round() {
    return sim.run_until(
        [&] {
          cu.run(sim.now());
          return cu.state().rfind("idle", 0) == 0;
        },
        20s);
  }
};

TEST(CatchUp, AMemberThatFailedIsCaughtUpAgainAfterTheWaitThenForgotten) {
  Fixture f;
  f.cu.failed({f.n1}, f.sim.now());
  EXPECT_EQ(f.cu.state(), "idle, 1 member(s) to catch up again after failures");
  TimePoint due = f.cu.run(f.sim.now());
  EXPECT_FALSE(f.cu.take_started());
  EXPECT_EQ(due, f.sim.now() + 2s);
  f.sim.run_for(2s);
  f.cu.run(f.sim.now());
  EXPECT_EQ(f.cu.state().rfind("walking the tree", 0), 0u) << f.cu.state();
  EXPECT_TRUE(f.started());
  EXPECT_EQ(f.cu.state().rfind("comparing", 0), 0u) << f.cu.state();
  ASSERT_TRUE(f.finish_round());
  EXPECT_EQ(f.cu.state(), "idle");  // it did not fail this time
  EXPECT_EQ(f.cu.run(f.sim.now()), TimePoint::max());
}

TEST(CatchUp, TheWaitDoublesWhileItKeepsFailingUpTo16Times) {
  Fixture f;
  f.cu.failed({f.n1}, f.sim.now());
  Duration want = 2s;
  for (int round = 0; round < 6; ++round) {
    f.sim.run_for(want);
    f.cu.run(f.sim.now());
    ASSERT_TRUE(f.started()) << "round " << round;
    f.cu.failed({f.n1}, f.sim.now());  // as the round's own failure report would
    ASSERT_TRUE(f.finish_round());
    want = std::min<Duration>(want * 2, 32s);
    TimePoint due = f.cu.run(f.sim.now());
    EXPECT_GT(due, f.sim.now() + want - 1s) << "round " << round;
    EXPECT_LE(due, f.sim.now() + want) << "round " << round;
    EXPECT_EQ(f.cu.state(), "idle, 1 member(s) to catch up again after failures");
  }
}

TEST(CatchUp, ASecondFailureBeforeItsTurnDoesNotPushTheTurnBack) {
  Fixture f;
  f.cu.failed({f.n1}, f.sim.now());
  f.sim.run_for(1s);
  f.cu.failed({f.n1}, f.sim.now());
  EXPECT_EQ(f.cu.run(f.sim.now()), f.sim.now() + 1s);
}

}  // namespace
}  // namespace makuo::test
