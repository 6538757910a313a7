#include "core/clock.h"

#include <gtest/gtest.h>

namespace dray {
namespace {

// A wall clock and a monotonic clock the test moves by hand.
struct Sources {
  TimeMs wall = 1'700'000'000'000;
  std::int64_t steady_ns = 5'000'000'000;
  void Pass(TimeMs ms) {
    wall += ms;
    steady_ns += ms * 1'000'000;
  }
  SmoothClock Clock() {
    return SmoothClock([this] { return wall; }, [this] { return steady_ns; }, 0.05);
  }
};

TEST(SmoothClockTest, FollowsAWallClockThatDoesNotJump) {
  Sources src;
  SmoothClock c = src.Clock();
  EXPECT_EQ(c.NowMs(), src.wall);
  for (int i = 0; i < 100; ++i) {
    src.Pass(37);
    EXPECT_EQ(c.NowMs(), src.wall);
  }
}

TEST(SmoothClockTest, AForwardStepIsAbsorbedAtFivePercent) {
  Sources src;
  SmoothClock c = src.Clock();
  const TimeMs start = c.NowMs();
  src.wall += 3'600'000;  // the system clock jumps an hour ahead
  src.steady_ns += 1'000'000'000;
  // A second later Dray's time has moved 1.05 s, not an hour: a 30 s lease
  // granted just before is not expired.
  EXPECT_EQ(c.NowMs() - start, 1050);
  // It catches up in 3600 / 0.05 s = 20 hours of running.
  for (int i = 0; i < 80; ++i) {
    src.Pass(1'000'000);
    c.NowMs();
  }
  EXPECT_EQ(c.NowMs(), src.wall);
}

TEST(SmoothClockTest, ABackwardStepNeverMovesTimeBackwards) {
  Sources src;
  SmoothClock c = src.Clock();
  src.Pass(1000);
  const TimeMs before = c.NowMs();
  src.wall -= 3'600'000;  // an hour back
  TimeMs prev = before;
  for (int i = 0; i < 100; ++i) {
    src.steady_ns += 100'000'000;  // 100 ms
    const TimeMs now = c.NowMs();
    EXPECT_GE(now, prev);
    EXPECT_EQ(now - prev, 95);  // runs 5% slow until it meets the wall clock
    prev = now;
  }
  // A 30 s lease lasts at most 31.6 s of real time, not an hour more.
  EXPECT_LE(30'000 / 0.95, 31'600);
}

TEST(SmoothClockTest, AStoppedMonotonicClockStopsTime) {
  Sources src;
  SmoothClock c = src.Clock();
  const TimeMs t = c.NowMs();
  src.wall += 10'000;  // only the wall moves
  EXPECT_EQ(c.NowMs(), t);
}

}  // namespace
}  // namespace dray
