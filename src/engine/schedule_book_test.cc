// ScheduleBook on its own, with a fake host standing for the engine and a
// fake clock (plain `now` values): ticks fire once each with the row after
// their tasks, misfire and overlap policies, buffered ticks waiting for a
// run to end, the live-task limit, pause, retiming, recovery, and the
// bound on schedules per Fire. schedule_test.cc tests the same through
// Engine.
#include "engine/schedule_book.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "core/time_format.h"
#include "engine/spec_builders_test_util.h"
#include "support/status_assert.h"

namespace dray {
namespace {

using testing_specs::Every;

constexpr TimeMs kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr TimeMs kMin = 60'000;

// The engine as a book sees it: live task ids, a live-task limit, and a
// log of what it was asked, in order.
class FakeHost : public TaskHost {
 public:
  struct Submitted {
    std::string id;
    TaskSpec spec;
    TimeMs at;
  };

  bool IsLive(const std::string& ns, const std::string& id) const override {
    return live.count(ns + "/" + id) > 0;
  }
  Status Room(std::size_t n) const override {
    if (live.size() + n <= limit) return Status::Ok();
    return ResourceExhausted("full");
  }
  std::string Submit(TaskSpec&& spec, TimeMs now) override {
    std::string id = "task-" + std::to_string(submitted.size() + 1);
    live.insert(spec.ns + "/" + id);
    log.push_back("submit " + id);
    submitted.push_back(Submitted{id, std::move(spec), now});
    return id;
  }
  void Cancel(const std::string& ns, const std::string& id, const std::string& why,
              TimeMs) override {
    log.push_back("cancel " + id);
    cancelled.push_back(why);
    live.erase(ns + "/" + id);  // as a task that was not yet leased
  }
  void Record(Mutation m) override {
    if (const auto* p = std::get_if<mutation::PutSchedule>(&m)) {
      log.push_back("put " + p->schedule->spec.id);
      rows.push_back(*p->schedule);
    } else if (const auto* d = std::get_if<mutation::DeleteSchedule>(&m)) {
      log.push_back("delete " + d->id);
    } else {
      log.push_back("other");
    }
  }

  std::set<std::string> live;  // ns + "/" + id
  std::size_t limit = 1'000;
  std::vector<std::string> log;
  std::vector<Submitted> submitted;
  std::vector<std::string> cancelled;  // the reasons
  std::vector<Schedule> rows;          // every PutSchedule, in order
};

class ScheduleBookTest : public ::testing::Test {
 protected:
  ScheduleBookTest() : book_(&ids_) {}

  Schedule Create(ScheduleSpec spec) {
    auto r = book_.Create(std::move(spec), now_, &host_);
    EXPECT_OK(r);
    return r.ok() ? *r : Schedule{};
  }
  // Moves the clock to `t` and fires; returns what was submitted then.
  std::vector<FakeHost::Submitted> At(TimeMs t) {
    now_ = t;
    const std::size_t before = host_.submitted.size();
    book_.Fire(now_, &host_);
    return {host_.submitted.begin() + static_cast<std::ptrdiff_t>(before), host_.submitted.end()};
  }
  Schedule Get(const std::string& id, std::size_t next_n = 3) {
    auto s = book_.Find("default", id, next_n, now_);
    EXPECT_TRUE(s.has_value()) << id;
    return s ? *s : Schedule{};
  }
  // The task ends, as the engine reports any task that ends.
  void End(const std::string& task_id) {
    host_.live.erase("default/" + task_id);
    book_.TaskEnded(task_id, now_);
  }

  TimeMs now_ = kT0;
  IdGenerator ids_;
  FakeHost host_;
  ScheduleBook book_;
};

TEST_F(ScheduleBookTest, ATickSubmitsTheLabelledTemplateAndThenRecordsTheRow) {
  Schedule created = Create(Every("beat", kMin));
  EXPECT_EQ(host_.log, (std::vector<std::string>{"put beat"}));
  EXPECT_EQ(created.last_tick, kT0);
  ASSERT_EQ(created.next_fire_times.size(), 5u);
  EXPECT_EQ(created.next_fire_times[0], kT0 + kMin);
  EXPECT_EQ(book_.NextDue(), kT0 + kMin);

  EXPECT_TRUE(At(kT0 + kMin - 1).empty());
  auto fired = At(kT0 + kMin);
  ASSERT_EQ(fired.size(), 1u);
  const TaskSpec& spec = fired[0].spec;
  EXPECT_EQ(spec.ns, "default");
  EXPECT_EQ(spec.queue, "s");
  EXPECT_EQ(spec.type, "tick");
  EXPECT_EQ(spec.labels.at("dray.schedule"), "beat");
  EXPECT_EQ(spec.labels.at("dray.tick"), FormatRfc3339(kT0 + kMin));
  // The task first, then the row that says it fired: one commit holds both.
  EXPECT_EQ(host_.log, (std::vector<std::string>{"put beat", "submit task-1", "put beat"}));
  const Schedule& row = host_.rows.back();
  EXPECT_EQ(row.last_tick, kT0 + kMin);
  EXPECT_EQ(row.last_task, "task-1");
  EXPECT_EQ(row.last_fired_at, kT0 + kMin);
  EXPECT_EQ(row.updated_at, kT0 + kMin);
  EXPECT_EQ(row.fired, 1);
  EXPECT_EQ(book_.ticks_fired(), 1u);
  EXPECT_EQ(book_.NextDue(), kT0 + 2 * kMin);
}

TEST_F(ScheduleBookTest, FiringAgainAtTheSameTimeDoesNothing) {
  Create(Every("beat", kMin));
  ASSERT_EQ(At(kT0 + kMin).size(), 1u);
  const std::size_t logged = host_.log.size();
  EXPECT_TRUE(At(kT0 + kMin).empty());
  EXPECT_EQ(host_.log.size(), logged);  // nothing recorded either
}

TEST_F(ScheduleBookTest, MisfireSkipFiresNoneOfTheMissedTicks) {
  ScheduleSpec spec = Every("beat", 10 * kMin);
  spec.misfire = MisfirePolicy::kSkip;
  Create(spec);
  // Ticks at 10, 20 and 30 minutes are due; the newest is 5 minutes late.
  EXPECT_TRUE(At(kT0 + 35 * kMin).empty());
  EXPECT_EQ(Get("beat").skipped, 3);
  EXPECT_EQ(Get("beat").last_tick, kT0 + 30 * kMin);
  EXPECT_EQ(book_.ticks_skipped(), 3u);
  EXPECT_EQ(host_.rows.back().skipped, 3);  // the skips are recorded
  EXPECT_EQ(book_.NextDue(), kT0 + 40 * kMin);
}

TEST_F(ScheduleBookTest, MisfireOnceFiresTheNewestTickForAllTheMissedOnes) {
  Create(Every("beat", 10 * kMin));  // once is the default
  auto fired = At(kT0 + 35 * kMin);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].spec.labels.at("dray.tick"), FormatRfc3339(kT0 + 30 * kMin));
  EXPECT_EQ(Get("beat").skipped, 2);
  EXPECT_EQ(Get("beat").fired, 1);
}

TEST_F(ScheduleBookTest, MisfireAllFiresTheNewestUpToItsBoundOldestFirst) {
  ScheduleSpec spec = Every("beat", 10 * kMin);
  spec.misfire = MisfirePolicy::kAll;
  spec.max_catchup = 2;
  Create(spec);
  auto fired = At(kT0 + 35 * kMin);
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].spec.labels.at("dray.tick"), FormatRfc3339(kT0 + 20 * kMin));
  EXPECT_EQ(fired[1].spec.labels.at("dray.tick"), FormatRfc3339(kT0 + 30 * kMin));
  EXPECT_EQ(Get("beat").skipped, 1);
  EXPECT_EQ(Get("beat").last_task, fired[1].id);
}

TEST_F(ScheduleBookTest, OverlapSkipLetsATickGoWhileThePreviousRunIsLive) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.overlap = OverlapPolicy::kSkip;
  Create(spec);
  auto first = At(kT0 + kMin);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(At(kT0 + 2 * kMin).empty());
  EXPECT_EQ(Get("beat").skipped, 1);
  End(first[0].id);
  EXPECT_EQ(At(kT0 + 3 * kMin).size(), 1u);
}

TEST_F(ScheduleBookTest, OverlapAllowStartsBesideThePreviousRun) {
  Create(Every("beat", kMin));
  ASSERT_EQ(At(kT0 + kMin).size(), 1u);
  EXPECT_EQ(At(kT0 + 2 * kMin).size(), 1u);
  EXPECT_EQ(host_.live.size(), 2u);
}

TEST_F(ScheduleBookTest, ABufferedTickWaitsForThePreviousRunAndStartsWhenItEnds) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.overlap = OverlapPolicy::kBufferOne;
  Create(spec);
  auto first = At(kT0 + kMin);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(At(kT0 + 2 * kMin).empty());  // buffered
  EXPECT_EQ(host_.rows.back().buffered_tick, kT0 + 2 * kMin);
  EXPECT_TRUE(At(kT0 + 3 * kMin).empty());  // one is buffered already: let go
  EXPECT_EQ(Get("beat").skipped, 1);
  // Another task ending changes nothing; the run it waits for does: the
  // buffered tick is due at once, and shown as the next fire time.
  now_ = kT0 + 3 * kMin + 10;
  book_.TaskEnded("task-99", now_);
  EXPECT_EQ(book_.NextDue(), kT0 + 4 * kMin);
  End(first[0].id);
  EXPECT_EQ(book_.NextDue(), now_);
  EXPECT_EQ(Get("beat").next_fire_times[0], now_);
  auto fired = At(now_);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].spec.labels.at("dray.tick"), FormatRfc3339(kT0 + 2 * kMin));
  EXPECT_EQ(Get("beat").buffered_tick, 0);
  EXPECT_EQ(host_.rows.back().last_task, fired[0].id);
  EXPECT_EQ(book_.NextDue(), kT0 + 4 * kMin);
}

TEST_F(ScheduleBookTest, OverlapCancelPreviousCancelsTheRunThenStarts) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.overlap = OverlapPolicy::kCancelPrevious;
  Create(spec);
  ASSERT_EQ(At(kT0 + kMin).size(), 1u);
  ASSERT_EQ(At(kT0 + 2 * kMin).size(), 1u);
  EXPECT_EQ(host_.log, (std::vector<std::string>{"put beat", "submit task-1", "put beat",
                                                 "cancel task-1", "submit task-2", "put beat"}));
  ASSERT_EQ(host_.cancelled.size(), 1u);
  EXPECT_EQ(host_.cancelled[0], "cancelled by schedule beat: the tick of " +
                                    FormatRfc3339(kT0 + 2 * kMin) +
                                    " started (overlap cancel_previous)");
}

TEST_F(ScheduleBookTest, AtTheLiveTaskLimitATickIsLetGoAndCounted) {
  Create(Every("beat", kMin));
  host_.limit = 0;
  EXPECT_TRUE(At(kT0 + kMin).empty());
  EXPECT_EQ(Get("beat").skipped, 1);
  EXPECT_EQ(Get("beat").fired, 0);
  EXPECT_EQ(Get("beat").last_tick, kT0 + kMin);  // handled: not owed later
  EXPECT_EQ(book_.ticks_skipped(), 1u);
  host_.limit = 1'000;
  EXPECT_EQ(At(kT0 + 2 * kMin).size(), 1u);
}

TEST_F(ScheduleBookTest, APausedScheduleLeavesTheHeapAndResumesByItsMisfirePolicy) {
  ScheduleSpec spec = Every("beat", kMin);
  Create(spec);
  spec.paused = true;
  ASSERT_OK(book_.Update(ScheduleSpec(spec), now_, &host_));
  EXPECT_FALSE(book_.NextDue().has_value());
  EXPECT_TRUE(Get("beat").next_fire_times.empty());
  EXPECT_TRUE(At(kT0 + 5 * kMin + 1).empty());
  spec.paused = false;
  ASSERT_OK(book_.Update(ScheduleSpec(spec), now_, &host_));
  EXPECT_EQ(book_.NextDue(), kT0 + kMin);  // the missed ticks are due
  ASSERT_EQ(At(now_).size(), 1u);          // once: one run for the five
  EXPECT_EQ(Get("beat").skipped, 4);
}

TEST_F(ScheduleBookTest, ANewTimingCountsFromNowAndABadOneChangesNothing) {
  ScheduleSpec spec = Every("beat", kMin);
  Create(spec);
  now_ = kT0 + 5 * kMin;
  spec.interval_ms = 10 * kMin;
  auto s = book_.Update(ScheduleSpec(spec), now_, &host_);
  ASSERT_OK(s);
  EXPECT_EQ(s->last_tick, now_);                        // the missed minutes are not owed
  EXPECT_EQ(s->next_fire_times[0], kT0 + 10 * kMin);    // anchored at creation
  EXPECT_EQ(host_.rows.back().spec.interval_ms, 10 * kMin);

  const std::size_t logged = host_.log.size();
  ScheduleSpec bad = spec;
  bad.cron = "not a cron";
  EXPECT_FALSE(book_.Update(std::move(bad), now_, &host_).ok());
  EXPECT_EQ(host_.log.size(), logged);
  EXPECT_EQ(Get("beat").spec.interval_ms, 10 * kMin);
  EXPECT_EQ(book_.NextDue(), kT0 + 10 * kMin);
}

TEST_F(ScheduleBookTest, CreateRefusesATakenIdAndABadTimingRecordingNothing) {
  Create(Every("beat", kMin));
  host_.log.clear();
  auto again = book_.Create(Every("beat", kMin), now_, &host_);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "a schedule 'beat' exists in namespace 'default'");
  ScheduleSpec bad = Every("zoned", 0);
  bad.cron = "0 2 * * *";
  bad.timezone = "Nowhere/Atlantis";
  EXPECT_FALSE(book_.Create(std::move(bad), now_, &host_).ok());
  EXPECT_FALSE(book_.Find("default", "zoned", 1, now_).has_value());
  EXPECT_TRUE(host_.log.empty());
  EXPECT_EQ(book_.size(), 1u);
}

TEST_F(ScheduleBookTest, AnEmptyIdGetsAUuid) {
  Schedule s = Create(Every("", kMin));
  EXPECT_TRUE(IsValidId(s.spec.id)) << s.spec.id;
  EXPECT_EQ(s.spec.task.ns, "default");
}

TEST_F(ScheduleBookTest, DeleteRecordsItStopsItsTicksAndForgetsItsBufferedWait) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.overlap = OverlapPolicy::kBufferOne;
  Create(spec);
  auto first = At(kT0 + kMin);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(At(kT0 + 2 * kMin).empty());  // buffered, waiting for task-1
  ASSERT_OK(book_.Delete("default", "beat", &host_));
  EXPECT_EQ(host_.log.back(), "delete beat");
  EXPECT_FALSE(book_.NextDue().has_value());
  End(first[0].id);  // the wait went with the schedule
  EXPECT_FALSE(book_.NextDue().has_value());
  Status again = book_.Delete("default", "beat", &host_);
  EXPECT_EQ(again.code(), StatusCode::kNotFound);
  EXPECT_EQ(again.message(), "no schedule 'beat' in namespace 'default'");
  EXPECT_EQ(book_.Update(Every("beat", kMin), now_, &host_).status().message(),
            "no schedule 'beat' in namespace 'default'");
  EXPECT_EQ(book_.size(), 0u);
}

TEST_F(ScheduleBookTest, ListingPagesByIdWithinANamespace) {
  for (const char* id : {"c", "a", "b"}) Create(Every(id, kMin));
  ScheduleSpec other = Every("a", kMin);
  other.ns = "other";
  Create(other);
  auto page = book_.List("default", "", 2, 1, now_);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].spec.id, "a");
  EXPECT_EQ(page[1].spec.id, "b");
  ASSERT_EQ(page[0].next_fire_times.size(), 1u);
  page = book_.List("default", "b", 2, 1, now_);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].spec.id, "c");
  EXPECT_EQ(book_.List("other", "", 10, 0, now_).size(), 1u);
}

TEST_F(ScheduleBookTest, RestoreRecordsNothingAndStartsABufferedTickWhoseRunEnded) {
  ScheduleSpec spec = Every("beat", kMin);
  spec.overlap = OverlapPolicy::kBufferOne;
  Schedule stored;
  stored.spec = spec;
  stored.created_at = stored.updated_at = kT0;
  stored.last_tick = kT0 + 2 * kMin;
  stored.last_task = "task-gone";  // not live: its run ended while down
  stored.buffered_tick = kT0 + 2 * kMin;
  stored.next_fire_times = {1, 2, 3};  // never stored; dropped if given
  now_ = kT0 + 2 * kMin + 30'000;
  book_.Restore(stored, now_, host_);
  EXPECT_TRUE(host_.log.empty());
  EXPECT_EQ(book_.NextDue(), now_);
  auto fired = At(now_);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].spec.labels.at("dray.tick"), FormatRfc3339(kT0 + 2 * kMin));
}

TEST_F(ScheduleBookTest, RestoreKeepsAScheduleWhoseZoneIsGonePaused) {
  Schedule stored;
  stored.spec = Every("zoned", 0);
  stored.spec.cron = "0 2 * * *";
  stored.spec.timezone = "Nowhere/Atlantis";
  stored.created_at = stored.updated_at = stored.last_tick = kT0;
  book_.Restore(stored, now_, host_);
  EXPECT_EQ(book_.size(), 1u);
  EXPECT_TRUE(Get("zoned").spec.paused);
  EXPECT_FALSE(book_.NextDue().has_value());
}

TEST_F(ScheduleBookTest, OneFireHandlesAtMost2048SchedulesAndTheRestStayDue) {
  host_.limit = 10'000;
  for (int i = 0; i < 2049; ++i) Create(Every("s" + std::to_string(i), kMin));
  EXPECT_EQ(At(kT0 + kMin).size(), 2048u);
  EXPECT_EQ(book_.NextDue(), now_);  // one left: the caller comes back at once
  EXPECT_EQ(At(now_).size(), 1u);
  EXPECT_EQ(book_.NextDue(), kT0 + 2 * kMin);
}

}  // namespace
}  // namespace dray
