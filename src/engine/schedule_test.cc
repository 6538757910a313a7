// Schedules in the engine (issue 6) with a fake clock: ticks fire once,
// with their schedule's new state in the same output; misfire and overlap
// policies; pause and resume; and restarts, simulated by rebuilding an
// engine from what its outputs committed.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "engine/engine.h"
#include "engine/spec_builders_test_util.h"
#include "support/status_assert.h"

namespace dray {
namespace {

using testing_specs::Every;

constexpr TimeMs kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr TimeMs kMin = 60'000;

// What the store would hold: the committed rows, rebuilt into an engine.
struct Durable {
  std::map<std::string, Task> tasks;
  std::map<std::string, Schedule> schedules;
  void Apply(const EngineOutput& out) {
    for (const Mutation& m : out.mutations) {
      if (const auto& t = TaskOf(m)) tasks[t->id] = *t;
      if (const auto* p = std::get_if<mutation::PutSchedule>(&m)) {
        schedules[p->schedule->spec.id] = *p->schedule;
      }
      if (const auto* d = std::get_if<mutation::DeleteSchedule>(&m)) schedules.erase(d->id);
    }
  }
};

class ScheduleTest : public ::testing::Test {
 protected:
  ScheduleTest() : engine_(std::make_unique<Engine>(EngineOptions{60'000, 1'000'000, 5})) {}

  Schedule Create(ScheduleSpec spec) {
    EngineOutput out;
    auto r = engine_->CreateSchedule(std::move(spec), now_, &out);
    EXPECT_OK(r);
    durable_.Apply(out);
    return r.ok() ? *r : Schedule{};
  }
  // Advances the clock and ticks; returns the tasks the tick created.
  std::vector<Task> At(TimeMs t) {
    now_ = t;
    EngineOutput out;
    do {
      engine_->Tick(now_, &out);  // as the server's ticker: until nothing is due
    } while (engine_->NextWakeup() && *engine_->NextWakeup() <= now_);
    durable_.Apply(out);
    last_ = out;
    std::vector<Task> created;
    for (const Mutation& m : out.mutations) {
      if (const auto* p = std::get_if<mutation::PutTask>(&m)) created.push_back(*p->task);
    }
    return created;
  }
  Schedule Get(const std::string& id, std::size_t next_n = 3) {
    auto s = engine_->FindSchedule("default", id, next_n, now_);
    EXPECT_TRUE(s.has_value()) << id;
    return s ? *s : Schedule{};
  }
  // A crash and a restart: a new engine from what was committed.
  void Restart(TimeMs at) {
    now_ = at;
    engine_ = std::make_unique<Engine>(EngineOptions{60'000, 1'000'000, 6});
    std::uint64_t seq = 0;
    for (auto& [id, t] : durable_.tasks) {
      seq = std::max(seq, t.seq);
      if (!IsTerminal(t.state)) {
        ASSERT_OK(engine_->RestoreTask(Task(t)));
      }
    }
    engine_->RestoreMarks(StoreMarks{1000, seq});
    for (auto& [id, s] : durable_.schedules) engine_->RestoreSchedule(s, now_);
    EngineOutput out;
    engine_->FinishRecovery([](const std::string&, const std::string&) -> StatusOr<Task> {
      return NotFound("none");
    }, now_, &out);
    durable_.Apply(out);
  }
  std::vector<LeasedTask> Lease() {
    EngineOutput out;
    auto r = engine_->Lease(LeaseRequest{"default", "w", {"s"}, 100, 600'000}, now_, &out);
    EXPECT_OK(r);
    durable_.Apply(out);
    return r.ok() ? *r : std::vector<LeasedTask>{};
  }
  void Complete(const LeasedTask& l) {
    EngineOutput out;
    ASSERT_OK(engine_->Complete("default", l.task.id, l.lease.token, "1", now_, &out));
    durable_.Apply(out);
  }

  TimeMs now_ = kT0;
  std::unique_ptr<Engine> engine_;
  Durable durable_;
  EngineOutput last_;
};

TEST_F(ScheduleTest, AnIntervalFiresEachTickOnceWithItsStateInTheSameOutput) {
  Schedule s = Create(Every("beat", kMin));
  EXPECT_EQ(s.last_tick, kT0);
  ASSERT_EQ(s.next_fire_times.size(), 5u);
  EXPECT_EQ(s.next_fire_times[0], kT0 + kMin);
  EXPECT_EQ(s.next_fire_times[4], kT0 + 5 * kMin);
  EXPECT_EQ(engine_->NextWakeup(), kT0 + kMin);

  EXPECT_TRUE(At(kT0 + kMin - 1).empty());
  auto fired = At(kT0 + kMin);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].type, "tick");
  EXPECT_EQ(fired[0].queue, "s");
  EXPECT_EQ(fired[0].labels.at("dray.schedule"), "beat");
  EXPECT_EQ(fired[0].labels.at("dray.tick"), "2023-11-14T22:14:20.000Z");
  // The task and the schedule's new state are one batch: committed together.
  bool schedule_row = false;
  for (const Mutation& m : last_.mutations) {
    if (const auto* p = std::get_if<mutation::PutSchedule>(&m)) {
      schedule_row = true;
      EXPECT_EQ(p->schedule->last_tick, kT0 + kMin);
      EXPECT_EQ(p->schedule->last_task, fired[0].id);
      EXPECT_EQ(p->schedule->fired, 1);
    }
  }
  EXPECT_TRUE(schedule_row);
  // Ticking again at the same time fires nothing more.
  EXPECT_TRUE(At(kT0 + kMin).empty());
  EXPECT_TRUE(At(kT0 + 2 * kMin - 1).empty());
  EXPECT_EQ(At(kT0 + 2 * kMin).size(), 1u);
  EXPECT_EQ(Get("beat").fired, 2);
}

TEST_F(ScheduleTest, ARestartNeitherRepeatsNorLosesATick) {
  Create(Every("beat", kMin));
  ASSERT_EQ(At(kT0 + kMin).size(), 1u);
  // Crash right after that commit; back within the same minute.
  Restart(kT0 + kMin + 30'000);
  EXPECT_TRUE(At(now_).empty());
  EXPECT_EQ(At(kT0 + 2 * kMin).size(), 1u);
  EXPECT_EQ(Get("beat").fired, 2);
  EXPECT_EQ(Get("beat").skipped, 0);
}

TEST_F(ScheduleTest, MisfireSkipFiresNoMissedTickAfterDowntime) {
  ScheduleSpec spec = Every("beat", 5 * kMin);
  spec.misfire = MisfirePolicy::kSkip;
  Create(spec);
  ASSERT_EQ(At(kT0 + 5 * kMin).size(), 1u);
  Restart(kT0 + 52 * kMin);  // nine ticks missed (10..50), the newest two minutes late
  EXPECT_TRUE(At(now_).empty());
  EXPECT_EQ(Get("beat").skipped, 9);
  EXPECT_EQ(Get("beat").next_fire_times[0], kT0 + 55 * kMin);
  EXPECT_EQ(At(kT0 + 55 * kMin).size(), 1u);
}

TEST_F(ScheduleTest, MisfireSkipStillFiresATickLateByLessThanTheGrace) {
  ScheduleSpec spec = Every("beat", 10 * kMin);
  spec.misfire = MisfirePolicy::kSkip;
  Create(spec);
  Restart(kT0 + 10 * kMin + 20'000);  // 20 s late: on time, not missed
  EXPECT_EQ(At(now_).size(), 1u);
  EXPECT_EQ(Get("beat").skipped, 0);
}

TEST_F(ScheduleTest, MisfireOnceFiresOneRunForAllMissedTicks) {
  Create(Every("beat", kMin));  // once is the default
  Restart(kT0 + 10 * kMin + 1);
  auto fired = At(now_);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].labels.at("dray.tick"), "2023-11-14T22:23:20.000Z");  // the newest
  EXPECT_EQ(Get("beat").skipped, 9);
  EXPECT_EQ(Get("beat").last_tick, kT0 + 10 * kMin);
}

TEST_F(ScheduleTest, MisfireAllFiresEveryMissedTickUpToItsBoundOldestFirst) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.misfire = MisfirePolicy::kAll;
  spec.max_catchup = 4;
  Create(spec);
  Restart(kT0 + 10 * kMin);
  auto fired = At(now_);
  ASSERT_EQ(fired.size(), 4u);  // the newest four of ten
  EXPECT_EQ(fired[0].labels.at("dray.tick"), "2023-11-14T22:20:20.000Z");
  EXPECT_EQ(fired[3].labels.at("dray.tick"), "2023-11-14T22:23:20.000Z");
  EXPECT_LT(fired[0].seq, fired[3].seq);
  EXPECT_EQ(Get("beat").skipped, 6);
  // Restarting again at once: all four are committed, none fires twice.
  Restart(now_);
  EXPECT_TRUE(At(now_).empty());
  EXPECT_EQ(Get("beat").fired, 4);
}

TEST_F(ScheduleTest, OverlapSkipLetsATickGoWhileThePreviousRunIsLive) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.overlap = OverlapPolicy::kSkip;
  Create(spec);
  ASSERT_EQ(At(kT0 + kMin).size(), 1u);
  auto held = Lease();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_TRUE(At(kT0 + 2 * kMin).empty());
  EXPECT_EQ(Get("beat").skipped, 1);
  Complete(held[0]);
  EXPECT_EQ(At(kT0 + 3 * kMin).size(), 1u);
}

TEST_F(ScheduleTest, OverlapAllowStartsBesideThePreviousRun) {
  Create(Every("beat", kMin));
  ASSERT_EQ(At(kT0 + kMin).size(), 1u);
  ASSERT_EQ(Lease().size(), 1u);
  EXPECT_EQ(At(kT0 + 2 * kMin).size(), 1u);
}

TEST_F(ScheduleTest, OverlapBufferOneRunsOneTickWhenThePreviousEndsAcrossARestart) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.overlap = OverlapPolicy::kBufferOne;
  Create(spec);
  ASSERT_EQ(At(kT0 + kMin).size(), 1u);
  auto held = Lease();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_TRUE(At(kT0 + 2 * kMin).empty());  // buffered
  EXPECT_TRUE(At(kT0 + 3 * kMin).empty());  // one is buffered already: let go
  Schedule s = Get("beat");
  EXPECT_EQ(s.buffered_tick, kT0 + 2 * kMin);
  EXPECT_EQ(s.skipped, 1);
  // The buffer is durable: a restart keeps it, and the run still holds it.
  Restart(kT0 + 3 * kMin + 10);
  EXPECT_TRUE(At(now_).empty());
  EXPECT_EQ(Get("beat").buffered_tick, kT0 + 2 * kMin);
  // The lease survived the restart: the worker completes; the buffered tick
  // becomes due at once and fires on the next tick.
  Complete(held[0]);
  EXPECT_EQ(engine_->NextWakeup(), now_);
  auto fired = At(now_);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].labels.at("dray.tick"), "2023-11-14T22:15:20.000Z");
  EXPECT_EQ(Get("beat").buffered_tick, 0);
}

TEST_F(ScheduleTest, OverlapCancelPreviousCancelsTheRunningTaskAndStarts) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.overlap = OverlapPolicy::kCancelPrevious;
  Create(spec);
  auto first = At(kT0 + kMin);
  ASSERT_EQ(first.size(), 1u);
  // Not yet leased: cancelled outright.
  auto second = At(kT0 + 2 * kMin);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(durable_.tasks.at(first[0].id).state, TaskState::kCancelled);
  EXPECT_NE(durable_.tasks.at(first[0].id).error.find("cancel_previous"), std::string::npos);
  // Running: asked to stop.
  ASSERT_EQ(Lease().size(), 1u);
  ASSERT_EQ(At(kT0 + 3 * kMin).size(), 1u);
  EXPECT_TRUE(durable_.tasks.at(second[0].id).cancel_requested);
}

TEST_F(ScheduleTest, PauseStopsTicksAndResumeTreatsTheMissedOnesByTheMisfirePolicy) {
  ScheduleSpec spec = Every("beat", kMin);
  Create(spec);
  spec.paused = true;
  EngineOutput out;
  ASSERT_OK(engine_->UpdateSchedule(ScheduleSpec(spec), now_, &out));
  durable_.Apply(out);
  EXPECT_TRUE(Get("beat").next_fire_times.empty());
  EXPECT_FALSE(engine_->NextWakeup().has_value());
  EXPECT_TRUE(At(kT0 + 5 * kMin + 1).empty());
  spec.paused = false;
  out = {};
  ASSERT_OK(engine_->UpdateSchedule(ScheduleSpec(spec), now_, &out));
  durable_.Apply(out);
  auto fired = At(now_);
  ASSERT_EQ(fired.size(), 1u);  // once: one run for the five
  EXPECT_EQ(Get("beat").skipped, 4);
}

TEST_F(ScheduleTest, ANewTimingCountsFromNowWithoutCatchingUp) {
  ScheduleSpec spec = Every("beat", kMin);
  Create(spec);
  spec.interval_ms = 10 * kMin;
  now_ = kT0 + 30'000;
  EngineOutput out;
  auto s = engine_->UpdateSchedule(ScheduleSpec(spec), now_, &out);
  ASSERT_OK(s);
  EXPECT_EQ(s->next_fire_times[0], kT0 + 10 * kMin);  // anchored at creation
  EXPECT_TRUE(At(kT0 + 9 * kMin).empty());
  EXPECT_EQ(At(kT0 + 10 * kMin).size(), 1u);
}

TEST_F(ScheduleTest, CronInAZoneGivesItsNextFireTimesInUtc) {
  ScheduleSpec spec;
  spec.id = "nightly";
  spec.cron = "0 2 * * *";
  spec.timezone = "Asia/Shanghai";
  spec.task.type = "report";
  Schedule s = Create(spec);
  // 02:00 in Shanghai is 18:00 UTC the day before.
  ASSERT_EQ(s.next_fire_times.size(), 5u);
  EXPECT_EQ(s.next_fire_times[0], 1'700'071'200'000);  // 2023-11-15T18:00:00Z
  EXPECT_EQ(s.next_fire_times[1], 1'700'071'200'000 + 86'400'000);
  EXPECT_EQ(At(1'700'071'200'000).size(), 1u);
}

TEST_F(ScheduleTest, JitterMovesEachFireWithinItsBoundTheSameWayAfterARestart) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.jitter_ms = 20'000;
  Schedule s = Create(spec);
  for (std::size_t i = 0; i < s.next_fire_times.size(); ++i) {
    const TimeMs tick = kT0 + static_cast<TimeMs>(i + 1) * kMin;
    EXPECT_GE(s.next_fire_times[i], tick);
    EXPECT_LT(s.next_fire_times[i], tick + 20'000);
  }
  Restart(kT0 + 1);
  EXPECT_EQ(Get("beat", 5).next_fire_times, s.next_fire_times);
  EXPECT_TRUE(At(s.next_fire_times[0] - 1).empty());
  EXPECT_EQ(At(s.next_fire_times[0]).size(), 1u);
}

TEST_F(ScheduleTest, StartAndEndBoundTheTicks) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.start_at = kT0 + 30 * kMin;
  spec.end_at = kT0 + 32 * kMin;
  Schedule s = Create(spec);
  ASSERT_EQ(s.next_fire_times.size(), 3u);  // 30, 31 and 32 minutes in
  EXPECT_EQ(s.next_fire_times[0], kT0 + 30 * kMin);
  EXPECT_TRUE(At(kT0 + 29 * kMin).empty());
  EXPECT_EQ(At(kT0 + 30 * kMin).size(), 1u);
  EXPECT_EQ(At(kT0 + 31 * kMin).size(), 1u);
  EXPECT_EQ(At(kT0 + 32 * kMin).size(), 1u);
  EXPECT_TRUE(At(kT0 + 40 * kMin).empty());
  EXPECT_FALSE(engine_->NextWakeup().has_value());
}

TEST_F(ScheduleTest, DeleteStopsItAndADuplicateIdIsRefused) {
  Create(Every("beat", kMin));
  EngineOutput out;
  EXPECT_EQ(engine_->CreateSchedule(Every("beat", kMin), now_, &out).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(out.mutations.empty());
  ASSERT_OK(engine_->DeleteSchedule("default", "beat", &out));
  EXPECT_EQ(engine_->DeleteSchedule("default", "beat", &out).code(), StatusCode::kNotFound);
  EXPECT_TRUE(At(kT0 + 5 * kMin).empty());
  EXPECT_EQ(engine_->schedules(), 0u);
}

TEST_F(ScheduleTest, ListingPagesByIdWithinANamespace) {
  for (const char* id : {"c", "a", "b"}) Create(Every(id, kMin));
  ScheduleSpec other = Every("a", kMin);
  other.ns = "other";
  Create(other);
  auto page = engine_->ListSchedules("default", "", 2, 1, now_);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].spec.id, "a");
  EXPECT_EQ(page[1].spec.id, "b");
  page = engine_->ListSchedules("default", "b", 2, 1, now_);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].spec.id, "c");
}

TEST_F(ScheduleTest, ManySchedulesEachFireOncePerTick) {
  // 10,000 schedules with ticks spread over a minute: each fires exactly
  // once per minute, whatever order Tick finds them in.
  for (int i = 0; i < 10'000; ++i) {
    ScheduleSpec spec = Every("s" + std::to_string(i), kMin);
    spec.start_at = kT0 + (i * 6);  // phases 0..60 s
    Create(spec);
  }
  std::map<std::string, int> per;
  for (TimeMs t = kT0; t <= kT0 + 3 * kMin; t += 7'000) {
    for (const Task& task : At(t)) per[task.labels.at("dray.schedule")]++;
  }
  ASSERT_EQ(per.size(), 10'000u);
  for (const auto& [id, n] : per) ASSERT_GE(n, 2) << id;
  for (const auto& [id, n] : per) ASSERT_LE(n, 3) << id;
  std::int64_t fired = 0;
  for (const auto& [id, s] : durable_.schedules) fired += s.fired;
  std::int64_t tasks = 0;
  for (const auto& [id, n] : per) tasks += n;
  EXPECT_EQ(fired, tasks);
}

}  // namespace
}  // namespace dray
