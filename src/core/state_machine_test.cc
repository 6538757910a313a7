#include "core/state_machine.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <utility>

#include "support/status_assert.h"

namespace dray {
namespace {

constexpr TimeMs kNow = 1'700'000'000'000;

Task RunningTask(bool cancel_requested = false, std::int32_t attempts = 1,
                 std::int32_t max_attempts = 3) {
  Task t;
  t.id = "t";
  t.state = TaskState::kRunning;
  t.attempts = attempts;
  t.max_attempts = max_attempts;
  t.cancel_requested = cancel_requested;
  t.lease_token = 7;
  t.history.push_back(Attempt{attempts, "w1", kNow - 10, 0, AttemptOutcome::kRunning, ""});
  return t;
}

// The whole table: for every (state, event) pair, the state it leads to, or
// nothing when the pair is refused. A pair missing from here must be refused.
TEST(StateMachineTest, WalksEveryStateEventPair) {
  using S = TaskState;
  using E = TaskEvent;
  const std::map<std::pair<S, E>, S> allowed = {
      {{S::kScheduled, E::kDue}, S::kReady},
      {{S::kScheduled, E::kCancel}, S::kCancelled},
      {{S::kBlocked, E::kDepsMet}, S::kReady},
      {{S::kBlocked, E::kCancel}, S::kCancelled},
      {{S::kReady, E::kLease}, S::kRunning},
      {{S::kReady, E::kCancel}, S::kCancelled},
      {{S::kRunning, E::kHeartbeat}, S::kRunning},
      {{S::kRunning, E::kComplete}, S::kSucceeded},
      {{S::kRunning, E::kFail}, S::kScheduled},     // attempts left
      {{S::kRunning, E::kExpire}, S::kScheduled},
      {{S::kRunning, E::kTimeout}, S::kScheduled},
      {{S::kRunning, E::kCancel}, S::kRunning},     // cancel requested
      {{S::kFailed, E::kRetry}, S::kReady},
      {{S::kCancelled, E::kRetry}, S::kReady},
      {{S::kCancelled, E::kCancel}, S::kCancelled},
  };
  int pairs = 0;
  for (S s : kAllTaskStates) {
    for (E e : kAllTaskEvents) {
      ++pairs;
      Task t = s == S::kRunning ? RunningTask() : Task{};
      t.state = s;
      auto r = Decide(t, EventInput{e}, kNow);
      auto it = allowed.find({s, e});
      SCOPED_TRACE(std::string(TaskStateName(s)) + " x " + std::string(TaskEventName(e)));
      if (it == allowed.end()) {
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
        continue;
      }
      ASSERT_OK(r);
      EXPECT_EQ(r->next, it->second);
      Task after = t;
      Apply(*r, ApplyInput{kNow, "w2", 100, kNow + 1000, "1", "boom"}, &after);
      EXPECT_EQ(after.state, it->second);
    }
  }
  EXPECT_EQ(pairs, 70);
}

TEST(StateMachineTest, InitialStateFollowsDepsAndRunAt) {
  EXPECT_EQ(InitialState(true, 0, kNow), TaskState::kBlocked);
  EXPECT_EQ(InitialState(false, kNow + 1, kNow), TaskState::kScheduled);
  EXPECT_EQ(InitialState(false, kNow, kNow), TaskState::kReady);
}

TEST(StateMachineTest, FailWithNoAttemptsLeftIsTerminal) {
  Task t = RunningTask(false, 3, 3);
  auto r = Decide(t, EventInput{TaskEvent::kFail}, kNow);
  ASSERT_OK(r);
  EXPECT_EQ(r->next, TaskState::kFailed);
  Apply(*r, ApplyInput{kNow, "", 0, 0, "", "disk on fire"}, &t);
  EXPECT_EQ(t.state, TaskState::kFailed);
  EXPECT_EQ(t.error, "disk on fire");
  EXPECT_EQ(t.finished_at, kNow);
  EXPECT_EQ(t.history.back().outcome, AttemptOutcome::kFailed);
  EXPECT_EQ(t.history.back().ended_at, kNow);
}

TEST(StateMachineTest, AFailedAttemptMayKeepAResult) {
  Task t = RunningTask(false, 1, 3);
  t.result = "\"earlier\"";
  auto r = Decide(t, EventInput{TaskEvent::kFail}, kNow);
  ASSERT_OK(r);
  Apply(*r, ApplyInput{kNow, "", 0, 0, R"({"exit_code":3})", "exit code 3"}, &t);
  EXPECT_EQ(t.result, R"({"exit_code":3})");
  EXPECT_EQ(t.error, "exit code 3");
  Task u = RunningTask(false, 1, 3);
  u.result = "\"earlier\"";
  auto r2 = Decide(u, EventInput{TaskEvent::kFail}, kNow);
  ASSERT_OK(r2);
  Apply(*r2, ApplyInput{kNow, "", 0, 0, "", "no output"}, &u);
  EXPECT_EQ(u.result, "\"earlier\"");  // no result given: the last one stays
}

TEST(StateMachineTest, NonRetryableFailSkipsRemainingAttempts) {
  Task t = RunningTask(false, 1, 5);
  auto r = Decide(t, EventInput{TaskEvent::kFail, false}, kNow);
  ASSERT_OK(r);
  EXPECT_EQ(r->next, TaskState::kFailed);
}

TEST(StateMachineTest, FailedAttemptIsRetriedAfterBackoff) {
  Task t = RunningTask(false, 2, 5);
  t.backoff = Backoff{1000, 60'000, 2.0, 0.0};
  auto r = Decide(t, EventInput{TaskEvent::kExpire}, kNow);
  ASSERT_OK(r);
  EXPECT_EQ(r->next, TaskState::kScheduled);
  EXPECT_EQ(r->run_at, kNow + 2000);  // second retry: initial * 2
  Apply(*r, ApplyInput{kNow, "", 0, 0, "", "lease expired"}, &t);
  EXPECT_EQ(t.run_at, kNow + 2000);
  EXPECT_EQ(t.history.back().outcome, AttemptOutcome::kExpired);
  EXPECT_EQ(t.finished_at, 0);
}

TEST(StateMachineTest, CancelRequestedRunningTaskEndsCancelledWhenWorkerStops) {
  for (TaskEvent e : {TaskEvent::kFail, TaskEvent::kExpire, TaskEvent::kTimeout}) {
    Task t = RunningTask(true);
    auto r = Decide(t, EventInput{e}, kNow);
    ASSERT_OK(r);
    EXPECT_EQ(r->next, TaskState::kCancelled);
    EXPECT_EQ(r->attempt_outcome, AttemptOutcome::kCancelled);
  }
}

TEST(StateMachineTest, CancelOfRunningTaskOnlyRequestsIt) {
  Task t = RunningTask();
  auto r = Decide(t, EventInput{TaskEvent::kCancel}, kNow);
  ASSERT_OK(r);
  Apply(*r, ApplyInput{kNow}, &t);
  EXPECT_EQ(t.state, TaskState::kRunning);
  EXPECT_TRUE(t.cancel_requested);
}

TEST(StateMachineTest, LeaseTokensOnlyGrow) {
  Task t;
  t.state = TaskState::kReady;
  t.lease_token = 50;
  auto r = Decide(t, EventInput{TaskEvent::kLease}, kNow);
  ASSERT_OK(r);
  Apply(*r, ApplyInput{kNow, "w", 10, kNow + 100}, &t);  // a smaller proposal
  EXPECT_GT(t.lease_token, 50u);
  EXPECT_EQ(t.attempts, 1);
  ASSERT_EQ(t.history.size(), 1u);
  EXPECT_EQ(t.history[0].worker, "w");
}

TEST(StateMachineTest, RetryGrantsOneMoreAttempt) {
  Task t = RunningTask(false, 3, 3);
  auto r = Decide(t, EventInput{TaskEvent::kFail}, kNow);
  ASSERT_OK(r);
  Apply(*r, ApplyInput{kNow, "", 0, 0, "", "x"}, &t);
  ASSERT_EQ(t.state, TaskState::kFailed);
  auto again = Decide(t, EventInput{TaskEvent::kRetry}, kNow + 5);
  ASSERT_OK(again);
  Apply(*again, ApplyInput{kNow + 5}, &t);
  EXPECT_EQ(t.state, TaskState::kReady);
  EXPECT_EQ(t.max_attempts, 4);
  EXPECT_EQ(t.finished_at, 0);
}

TEST(BackoffTest, GrowsThenCaps) {
  Backoff b{100, 1000, 3.0, 0.0};
  EXPECT_EQ(BackoffDelayMs(b, 1, 0.0), 100);
  EXPECT_EQ(BackoffDelayMs(b, 2, 0.0), 300);
  EXPECT_EQ(BackoffDelayMs(b, 3, 0.0), 900);
  EXPECT_EQ(BackoffDelayMs(b, 4, 0.0), 1000);
  EXPECT_EQ(BackoffDelayMs(b, 1000, 0.0), 1000);
}

TEST(BackoffTest, JitterOnlyShortensWithinItsFraction) {
  Backoff b{1000, 1000, 2.0, 0.25};
  EXPECT_EQ(BackoffDelayMs(b, 1, 0.0), 1000);
  EXPECT_EQ(BackoffDelayMs(b, 1, 0.999999), 750);
  EXPECT_EQ(BackoffDelayMs(b, 1, 0.5), 875);
}

}  // namespace
}  // namespace dray
