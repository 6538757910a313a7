#include "core/schedule_time.h"

#include <gtest/gtest.h>

#include <set>

#include "core/time_format.h"

namespace dray {
namespace {

constexpr TimeMs kMin = 60'000;
TimeMs At(const char* t) { return ParseRfc3339(t).value(); }

ScheduleTiming Every(std::int64_t ms, TimeMs anchor) {
  ScheduleTiming t;
  t.interval_ms = ms;
  t.anchor = anchor;
  t.id = "s1";
  return t;
}

ScheduleTiming Cron(const char* expr, const char* zone = "UTC") {
  ScheduleTiming t;
  t.cron = *CronExpr::Parse(expr);
  t.zone = *TimeZone::Load(zone);
  t.id = "s2";
  return t;
}

TEST(ScheduleTimeTest, IntervalTicksWithinStartAndEnd) {
  ScheduleTiming t = Every(500, 1000);
  EXPECT_EQ(NextTick(t, 1000), 1500);
  EXPECT_EQ(NextTick(t, 1499), 1500);
  EXPECT_EQ(NextTick(t, 1500), 2000);
  EXPECT_EQ(NextTick(t, -2000), -1500);
  t.start_at = 5000;
  EXPECT_EQ(NextTick(t, 0), 5000);
  t.end_at = 6000;
  EXPECT_EQ(NextTick(t, 5999), 6000);
  EXPECT_EQ(NextTick(t, 6000), std::nullopt);
}

TEST(ScheduleTimeTest, CronTicksWithinStartAndEnd) {
  ScheduleTiming t = Cron("0 2 * * *", "Asia/Shanghai");
  t.start_at = At("2026-12-05T00:00:00.000Z");
  t.end_at = At("2026-12-07T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(*NextTick(t, At("2026-11-30T00:00:00.000Z"))), "2026-12-05T18:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(*NextTick(t, At("2026-12-05T18:00:00.000Z"))), "2026-12-06T18:00:00.000Z");
  EXPECT_EQ(NextTick(t, At("2026-12-06T18:00:00.000Z")), std::nullopt);
}

TEST(ScheduleTimeTest, JitterIsStableAndSpread) {
  ScheduleTiming t = Every(kMin, 0);
  t.jitter_ms = 1000;
  double sum = 0;
  std::set<TimeMs> offsets;
  for (TimeMs tick = 0; tick < 2000 * kMin; tick += kMin) {
    const TimeMs f = FireTime(t, tick);
    ASSERT_EQ(f, FireTime(t, tick)) << "the same tick, the same fire time";
    ASSERT_GE(f, tick);
    ASSERT_LT(f, tick + 1000);
    sum += static_cast<double>(f - tick);
    offsets.insert(f - tick);
  }
  EXPECT_NEAR(sum / 2000, 500, 40);
  EXPECT_GT(offsets.size(), 800u);
  ScheduleTiming other = t;
  other.id = "s9";
  int same = 0;
  for (TimeMs tick = 0; tick < 100 * kMin; tick += kMin) same += FireTime(t, tick) == FireTime(other, tick);
  EXPECT_LT(same, 5) << "another schedule jitters otherwise";
}

TEST(ScheduleTimeTest, CatchupByPolicy) {
  const TimeMs t0 = At("2026-11-30T10:00:00.000Z");
  ScheduleTiming t = Every(kMin, t0);
  // Down from just after t0 until 10 min 30 s later: ticks +1 .. +10 min
  // are due; +10 min is 30 s late (on time), the others missed.
  const TimeMs now = t0 + 10 * kMin + 30'000;
  CatchupPlan all = Catchup(t, t0, now, MisfirePolicy::kAll);
  ASSERT_EQ(all.fire.size(), 10u);
  EXPECT_EQ(all.fire.front(), t0 + kMin);
  EXPECT_EQ(all.fire.back(), t0 + 10 * kMin);
  EXPECT_EQ(all.skipped, 0);
  EXPECT_EQ(all.next, t0 + 11 * kMin);
  CatchupPlan once = Catchup(t, t0, now, MisfirePolicy::kOnce);
  EXPECT_EQ(once.fire, std::vector<TimeMs>{t0 + 10 * kMin});
  EXPECT_EQ(once.skipped, 9);
  CatchupPlan skip = Catchup(t, t0, now, MisfirePolicy::kSkip);
  EXPECT_EQ(skip.fire, std::vector<TimeMs>{t0 + 10 * kMin}) << "the on-time tick still fires";
  EXPECT_EQ(skip.skipped, 9);
  // Later than the grace (here 10 s): skip fires nothing.
  CatchupPlan late = Catchup(t, t0, now, MisfirePolicy::kSkip, 100, 10'000);
  EXPECT_TRUE(late.fire.empty());
  EXPECT_EQ(late.skipped, 10);
  EXPECT_EQ(late.next, t0 + 11 * kMin);
  // A bound on "all": the newest are kept.
  CatchupPlan bounded = Catchup(t, t0, now, MisfirePolicy::kAll, 3);
  EXPECT_EQ(bounded.fire, (std::vector<TimeMs>{t0 + 8 * kMin, t0 + 9 * kMin, t0 + 10 * kMin}));
  EXPECT_EQ(bounded.skipped, 7);
  // Fired ticks are not due again (a restart right after).
  CatchupPlan again = Catchup(t, all.fire.back(), now, MisfirePolicy::kAll);
  EXPECT_TRUE(again.fire.empty());
  EXPECT_EQ(again.skipped, 0);
}

TEST(ScheduleTimeTest, AYearDownIsCountedNotWalked) {
  const TimeMs t0 = At("2026-01-01T00:00:00.000Z");
  ScheduleTiming t = Every(1000, t0);
  const TimeMs now = t0 + 365LL * 86'400'000;
  CatchupPlan plan = Catchup(t, t0, now, MisfirePolicy::kAll, 100);
  ASSERT_EQ(plan.fire.size(), 100u);
  EXPECT_EQ(plan.fire.back(), now);
  EXPECT_EQ(plan.skipped, 365LL * 86'400 - 100);
  EXPECT_EQ(plan.next, now + 1000);
}

TEST(ScheduleTimeTest, CronCatchupAcrossAFewHours) {
  ScheduleTiming t = Cron("0 * * * *");
  const TimeMs last = At("2026-11-30T05:00:00.000Z");
  const TimeMs now = At("2026-11-30T10:20:00.000Z");
  CatchupPlan plan = Catchup(t, last, now, MisfirePolicy::kAll);
  ASSERT_EQ(plan.fire.size(), 5u);
  EXPECT_EQ(FormatRfc3339(plan.fire.front()), "2026-11-30T06:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(plan.fire.back()), "2026-11-30T10:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(*plan.next), "2026-11-30T11:00:00.000Z");
  // Every second for two days: walked, the newest 100 kept.
  ScheduleTiming fast = Cron("* * * * * *");
  CatchupPlan many = Catchup(fast, last, last + 2 * 86'400'000LL, MisfirePolicy::kAll, 100);
  EXPECT_EQ(many.fire.size(), 100u);
  EXPECT_EQ(many.skipped, 2 * 86'400 - 100);
}

TEST(ScheduleTimeTest, AJitteredTickIsNotDueBeforeItsFireTime) {
  ScheduleTiming t = Every(kMin, 0);
  t.jitter_ms = 30'000;
  const TimeMs fire = FireTime(t, kMin);
  ASSERT_GT(fire, kMin) << "pick another id if this tick drew no jitter";
  EXPECT_TRUE(Catchup(t, 0, fire - 1, MisfirePolicy::kAll).fire.empty());
  EXPECT_EQ(Catchup(t, 0, fire - 1, MisfirePolicy::kAll).next, kMin);
  EXPECT_EQ(Catchup(t, 0, fire, MisfirePolicy::kAll).fire, std::vector<TimeMs>{kMin});
}

}  // namespace
}  // namespace dray

namespace dray {
namespace {

TEST(ScheduleTimeTest, OverlapPolicies) {
  using A = OverlapAction;
  for (OverlapPolicy p : {OverlapPolicy::kAllow, OverlapPolicy::kSkip, OverlapPolicy::kBufferOne,
                          OverlapPolicy::kCancelPrevious}) {
    EXPECT_EQ(DecideOverlap(p, false, false), A::kStart) << "nothing running: every policy starts";
  }
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kAllow, true, false), A::kStart);
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kSkip, true, false), A::kDrop);
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kBufferOne, true, false), A::kBuffer);
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kBufferOne, true, true), A::kDrop);
  EXPECT_EQ(DecideOverlap(OverlapPolicy::kCancelPrevious, true, false), A::kCancelThenStart);
}

}  // namespace
}  // namespace dray
