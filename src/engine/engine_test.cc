#include "engine/engine.h"

#include <gtest/gtest.h>

#include <set>

#include "support/status_assert.h"

namespace dray {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : engine_(EngineOptions{60'000, 1000, 42}) {}

  std::string Submit(TaskSpec spec) {
    EngineOutput out;
    auto r = engine_.Submit({std::move(spec)}, now_, &out);
    EXPECT_OK(r);
    return r.ok() ? r->at(0).id : "";
  }
  static TaskSpec Spec(std::string type = "t", std::string queue = "q") {
    TaskSpec s;
    s.type = std::move(type);
    s.queue = std::move(queue);
    return s;
  }
  std::vector<LeasedTask> Lease(std::size_t max = 1, std::vector<std::string> queues = {"q"},
                                std::int64_t lease_ms = 0) {
    EngineOutput out;
    LeaseRequest req;
    req.worker = "w1";
    req.queues = std::move(queues);
    req.max = max;
    req.lease_ms = lease_ms;
    auto r = engine_.Lease(req, now_, &out);
    EXPECT_OK(r);
    return r.ok() ? *r : std::vector<LeasedTask>{};
  }
  TaskState StateOf(const std::string& id) {
    std::optional<Task> t = engine_.Find("default", id);
    return t ? t->state : TaskState::kSucceeded;  // gone from memory: terminal
  }

  TimeMs now_ = kT0;
  Engine engine_;
};

TEST_F(EngineTest, LowerPriorityRunsFirstAndTiesRunInSubmitOrder) {
  TaskSpec a = Spec(), b = Spec(), c = Spec(), d = Spec();
  a.priority = 5;
  b.priority = 0;
  c.priority = 5;
  d.priority = -1;
  std::string ia = Submit(a), ib = Submit(b), ic = Submit(c), id = Submit(d);
  auto got = Lease(4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].task.id, id);
  EXPECT_EQ(got[1].task.id, ib);
  EXPECT_EQ(got[2].task.id, ia);
  EXPECT_EQ(got[3].task.id, ic);
}

TEST_F(EngineTest, DelayedTaskBecomesReadyWhenDue) {
  TaskSpec s = Spec();
  s.delay_ms = 500;
  std::string id = Submit(s);
  EXPECT_EQ(StateOf(id), TaskState::kScheduled);
  EXPECT_EQ(engine_.NextWakeup(), kT0 + 500);
  EXPECT_TRUE(Lease().empty());
  now_ += 499;
  EXPECT_TRUE(Lease().empty());
  now_ += 1;
  auto got = Lease();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, id);
}

TEST_F(EngineTest, CompleteWithCurrentTokenSucceedsAndLeavesMemory) {
  std::string id = Submit(Spec());
  auto got = Lease();
  ASSERT_EQ(got.size(), 1u);
  EngineOutput out;
  auto done = engine_.Complete("default", id, got[0].lease.token, "{\"ok\":1}", now_, &out);
  ASSERT_OK(done);
  EXPECT_EQ(done->state, TaskState::kSucceeded);
  EXPECT_EQ(done->result, "{\"ok\":1}");
  EXPECT_FALSE(engine_.Find("default", id).has_value());
  ASSERT_EQ(out.finished.size(), 1u);
  ASSERT_EQ(out.mutations.size(), 1u);
  EXPECT_EQ(TaskOf(out.mutations[0])->state, TaskState::kSucceeded);
}

TEST_F(EngineTest, StaleTokenIsRefusedAndChangesNothing) {
  TaskSpec s = Spec();
  s.backoff = Backoff{0, 0, 1.0, 0.0};
  std::string id = Submit(s);
  auto first = Lease(1, {"q"}, 1000);
  ASSERT_EQ(first.size(), 1u);
  now_ += 1000;  // the first lease expires; the task is retried at once
  auto second = Lease(1, {"q"}, 1000);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_GT(std::stoull(second[0].lease.token), std::stoull(first[0].lease.token));
  Task before = *engine_.Find("default", id);
  for (int op = 0; op < 3; ++op) {
    EngineOutput out;
    Status s2;
    if (op == 0) s2 = engine_.Heartbeat("default", id, first[0].lease.token, 0, now_, &out).status();
    if (op == 1) s2 = engine_.Complete("default", id, first[0].lease.token, "1", now_, &out).status();
    if (op == 2) s2 = engine_.Fail("default", id, first[0].lease.token, "x", true, "", now_, &out).status();
    EXPECT_EQ(s2.code(), StatusCode::kAborted) << op;
    EXPECT_TRUE(out.mutations.empty());
  }
  EXPECT_EQ(*engine_.Find("default", id), before);
}

TEST_F(EngineTest, ExpiredLeaseIsAFailedAttemptRetriedWithBackoffThenFailed) {
  TaskSpec s = Spec();
  s.max_attempts = 2;
  s.backoff = Backoff{100, 1000, 2.0, 0.0};
  std::string id = Submit(s);
  ASSERT_EQ(Lease(1, {"q"}, 1000).size(), 1u);
  now_ += 1000;
  EngineOutput out;
  engine_.Tick(now_, &out);
  std::optional<Task> t = engine_.Find("default", id);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->state, TaskState::kScheduled);
  EXPECT_EQ(t->run_at, now_ + 100);
  EXPECT_EQ(t->history.back().outcome, AttemptOutcome::kExpired);
  EXPECT_NE(t->error.find("lease expired"), std::string::npos);
  now_ += 100;
  ASSERT_EQ(Lease(1, {"q"}, 1000).size(), 1u);
  now_ += 1000;
  EngineOutput out2;
  engine_.Tick(now_, &out2);
  EXPECT_FALSE(engine_.Find("default", id).has_value());
  ASSERT_EQ(out2.finished, std::vector<std::string>{id});
  EXPECT_EQ(TaskOf(out2.mutations.back())->state, TaskState::kFailed);
  EXPECT_EQ(TaskOf(out2.mutations.back())->history.size(), 2u);
}

TEST_F(EngineTest, HeartbeatExtendsTheLease) {
  std::string id = Submit(Spec());
  auto got = Lease(1, {"q"}, 1000);
  for (int i = 0; i < 5; ++i) {
    now_ += 900;
    EngineOutput out;
    auto hb = engine_.Heartbeat("default", id, got[0].lease.token, 0, now_, &out);
    ASSERT_OK(hb);
    EXPECT_EQ(hb->expires_at, now_ + 1000);
  }
  EXPECT_EQ(StateOf(id), TaskState::kRunning);
}

TEST_F(EngineTest, AttemptPastItsTimeoutIsFailedEvenWithHeartbeats) {
  TaskSpec s = Spec();
  s.timeout_ms = 2500;
  s.max_attempts = 1;
  std::string id = Submit(s);
  auto got = Lease(1, {"q"}, 1000);
  for (int i = 0; i < 2; ++i) {
    now_ += 900;
    EngineOutput out;
    ASSERT_OK(engine_.Heartbeat("default", id, got[0].lease.token, 0, now_, &out));
  }
  now_ = kT0 + 2500;
  EngineOutput out;
  auto hb = engine_.Heartbeat("default", id, got[0].lease.token, 0, now_, &out);
  EXPECT_EQ(hb.status().code(), StatusCode::kNotFound);  // failed and gone from memory
  ASSERT_EQ(out.finished.size(), 1u);
  const Task& last = *TaskOf(out.mutations.back());
  EXPECT_EQ(last.state, TaskState::kFailed);
  EXPECT_EQ(last.history.back().outcome, AttemptOutcome::kTimedOut);
  EXPECT_NE(last.error.find("timed out"), std::string::npos);
}

TEST_F(EngineTest, CancelOfRunningTaskIsSeenOnHeartbeatAndEndsCancelled) {
  std::string id = Submit(Spec());
  auto got = Lease();
  EngineOutput out;
  auto c = engine_.Cancel("default", id, now_, &out);
  ASSERT_OK(c);
  EXPECT_EQ(c->state, TaskState::kRunning);
  EXPECT_TRUE(c->cancel_requested);
  auto hb = engine_.Heartbeat("default", id, got[0].lease.token, 0, now_, &out);
  ASSERT_OK(hb);
  EXPECT_TRUE(hb->cancel_requested);
  auto f = engine_.Fail("default", id, got[0].lease.token, "stopped", true, "", now_, &out);
  ASSERT_OK(f);
  EXPECT_EQ(f->state, TaskState::kCancelled);
}

TEST_F(EngineTest, CancelOfWaitingTaskIsImmediate) {
  TaskSpec s = Spec();
  s.delay_ms = 10'000;
  std::string id = Submit(s);
  EngineOutput out;
  auto c = engine_.Cancel("default", id, now_, &out);
  ASSERT_OK(c);
  EXPECT_EQ(c->state, TaskState::kCancelled);
  EXPECT_FALSE(engine_.Find("default", id).has_value());
  EXPECT_FALSE(engine_.NextWakeup().has_value());
}

TEST_F(EngineTest, IdempotencyKeyReturnsFirstIdWithinTheWindow) {
  TaskSpec s = Spec();
  s.key = "order-1";
  std::string first = Submit(s);
  EngineOutput out;
  auto again = engine_.Submit({s}, now_ + 59'999, &out);
  ASSERT_OK(again);
  EXPECT_EQ(again->at(0).id, first);
  EXPECT_FALSE(again->at(0).created);
  EXPECT_TRUE(out.mutations.empty());
  now_ += 60'000;
  std::string later = Submit(s);
  EXPECT_NE(later, first);
  TaskSpec other_ns = s;
  other_ns.ns = "acme";
  EXPECT_NE(Submit(other_ns), later);
}

TEST_F(EngineTest, PausedQueueIsNotLeasedUntilResumed) {
  Submit(Spec());
  EngineOutput out;
  ASSERT_OK(engine_.PatchQueue("default", "q", [](QueueSettings* s) { s->paused = true; return Status::Ok(); }, &out));
  EXPECT_TRUE(Lease().empty());
  EngineOutput out2;
  ASSERT_OK(engine_.PatchQueue("default", "q", [](QueueSettings* s) { s->paused = false; return Status::Ok(); }, &out2));
  EXPECT_TRUE(out2.made_ready);
  EXPECT_EQ(Lease().size(), 1u);
}

TEST_F(EngineTest, WaitersAreServedOldestFirstWhenTasksArrive) {
  LeaseRequest r1{"default", "w1", {"q"}, 1, 0}, r2{"default", "w2", {"q", "other"}, 5, 0};
  engine_.AddWaiter(1, r1);
  engine_.AddWaiter(2, r2);
  EngineOutput out;
  EXPECT_TRUE(engine_.ServeWaiters(now_, &out).empty());
  std::string a = Submit(Spec()), b = Submit(Spec()), c = Submit(Spec());
  EngineOutput out2;
  auto served = engine_.ServeWaiters(now_, &out2);
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[0].first, 1u);
  ASSERT_EQ(served[0].second.size(), 1u);
  EXPECT_EQ(served[0].second[0].task.id, a);
  EXPECT_EQ(served[1].first, 2u);
  ASSERT_EQ(served[1].second.size(), 2u);
  EXPECT_EQ(served[1].second[0].task.worker, "w2");
  EXPECT_EQ(engine_.waiters(), 0u);
}

// The engine keeps live tasks in a compact form; every field must come back
// out of it as it went in, the rare ones included.
TEST_F(EngineTest, ACompactLiveTaskKeepsEveryField) {
  Task t;
  t.id = "0193a1b2-c3d4-7e5f-8a9b-0123456789ab";
  t.ns = "tenant";
  t.queue = "q";
  t.type = "resize";
  t.payload = std::string(300, 'x');
  t.payload = "\"" + t.payload + "\"";
  t.priority = -3;
  t.run_at = now_ - 10;
  t.max_attempts = 7;
  t.backoff = Backoff{5, 50, 3.0, 0.5};
  t.timeout_ms = 9000;
  t.lease_ms = 1234;
  t.key = "k";
  t.concurrency_key = "acct";
  t.concurrency_limit = 2;
  t.labels = {{"a", "1"}, {std::string("n\0ul", 4), std::string(300, 'v')}, {"", ""}};
  t.state = TaskState::kRunning;
  t.attempts = 2;
  t.result = R"({"partial":1})";
  t.error = "first try failed";
  t.created_at = now_ - 100;
  t.updated_at = now_ - 5;
  t.lease_token = 41;
  t.lease_expires_at = now_ + 60'000;
  t.worker = "w";
  t.cancel_requested = true;
  t.seq = 12;
  t.history = {Attempt{1, "w0", now_ - 90, now_ - 80, AttemptOutcome::kFailed, "first try failed"},
               Attempt{2, "w", now_ - 5, 0, AttemptOutcome::kRunning, ""}};
  Engine fresh(EngineOptions{60'000, 1000, 7});
  ASSERT_OK(fresh.RestoreTask(Task(t)));
  EXPECT_EQ(*fresh.Find("tenant", t.id), t);
  EXPECT_FALSE(fresh.Find("default", t.id).has_value());  // another namespace
  // A plain task (nothing rare) too.
  Task plain;
  plain.id = "0193a1b2-c3d4-7e5f-8a9b-0123456789ac";
  plain.type = "t";
  plain.state = TaskState::kReady;
  plain.seq = 13;
  ASSERT_OK(fresh.RestoreTask(Task(plain)));
  Task want = plain;  // a waiting task says why when read
  want.wait_reason = "worker";
  want.wait_detail = "ready: no worker has leased it yet";
  EXPECT_EQ(*fresh.Find("default", plain.id), want);
  // Ids Dray did not make are refused, not guessed at.
  Task odd = plain;
  odd.id = "not-a-uuid";
  EXPECT_EQ(fresh.RestoreTask(std::move(odd)).code(), StatusCode::kDataLoss);
  EXPECT_EQ(fresh.live_tasks(), 2u);
}

// Many distinct types and backoffs: past the interning caps tasks keep
// their own copies, and nothing is mixed up.
TEST_F(EngineTest, ManyDistinctTypesAndBackoffsStayApart) {
  Engine big(EngineOptions{60'000, 100'000, 7});
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 5000; ++i) {
    TaskSpec s = Spec("type-" + std::to_string(i));
    s.backoff = Backoff{1000 + i, 60'000, 2.0, 0.1};
    specs.push_back(std::move(s));
  }
  EngineOutput out;
  auto submitted = big.Submit(std::move(specs), now_, &out);
  ASSERT_OK(submitted);
  for (std::size_t i = 0; i < 5000; i += 37) {
    std::optional<Task> t = big.Find("default", submitted->at(i).id);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->type, "type-" + std::to_string(i));
    EXPECT_EQ(t->backoff.initial_ms, 1000 + static_cast<std::int64_t>(i));
  }
  // Leasing and completing them all goes through the compact form each time.
  LeaseRequest req{"default", "w", {"q"}, 5000, 0};
  auto leased = big.Lease(req, now_, &out);
  ASSERT_OK(leased);
  ASSERT_EQ(leased->size(), 5000u);
  for (const LeasedTask& l : *leased) {
    auto done = big.Complete("default", l.task.id, l.lease.token, "1", now_, &out);
    ASSERT_OK(done);
    EXPECT_EQ(done->type, l.task.type);
    EXPECT_EQ(done->backoff, l.task.backoff);
  }
  EXPECT_EQ(big.live_tasks(), 0u);
}

TEST_F(EngineTest, RestoredRunningTaskWhoseLeaseExpiredWhileDownIsExpired) {
  std::string id = Submit(Spec());
  auto got = Lease(1, {"q"}, 1000);
  Task snapshot = *engine_.Find("default", id);
  Engine fresh(EngineOptions{60'000, 1000, 7});
  fresh.RestoreMarks(StoreMarks{snapshot.lease_token, snapshot.seq});
  ASSERT_OK(fresh.RestoreTask(Task(snapshot)));
  EngineOutput out;
  fresh.Tick(now_ + 5000, &out);
  std::optional<Task> t = fresh.Find("default", id);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->state, TaskState::kScheduled);
  EXPECT_EQ(t->history.back().outcome, AttemptOutcome::kExpired);
  // New leases in the restored engine get tokens above every stored one.
  EngineOutput out2;
  fresh.Tick(t->run_at, &out2);
  LeaseRequest req{"default", "w9", {"q"}, 1, 0};
  auto again = fresh.Lease(req, t->run_at, &out2);
  ASSERT_OK(again);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_GT(std::stoull(again->at(0).lease.token), std::stoull(got[0].lease.token));
}

TEST_F(EngineTest, SubmitPastTheLiveLimitIsRefusedWhole) {
  std::vector<TaskSpec> many(1001, Spec());
  EngineOutput out;
  auto r = engine_.Submit(std::move(many), now_, &out);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(out.mutations.empty());
  EXPECT_EQ(engine_.live_tasks(), 0u);
}

TEST_F(EngineTest, RetryRunsAFailedTaskAgain) {
  TaskSpec s = Spec();
  s.max_attempts = 1;
  std::string id = Submit(s);
  auto got = Lease();
  EngineOutput out;
  auto failed = engine_.Fail("default", id, got[0].lease.token, "nope", true, "", now_, &out);
  ASSERT_OK(failed);
  ASSERT_EQ(failed->state, TaskState::kFailed);
  EngineOutput out2;
  auto again = engine_.Retry(*failed, now_, &out2);
  ASSERT_OK(again);
  EXPECT_EQ(again->state, TaskState::kReady);
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].task.attempts, 2);
}

TEST_F(EngineTest, QueueCountsFollowEveryTransition) {
  TaskSpec later = Spec();
  later.delay_ms = 100;
  Submit(Spec());
  Submit(Spec());
  Submit(later);
  Lease();
  auto q = engine_.FindQueue("default", "q");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->counts[TaskState::kReady], 1);
  EXPECT_EQ(q->counts[TaskState::kRunning], 1);
  EXPECT_EQ(q->counts[TaskState::kScheduled], 1);
}

TEST_F(EngineTest, FinishedCountsFollowCompletionRetryAndPurge) {
  engine_.RestoreFinishedCounts({StateCount{"default", "q", TaskState::kSucceeded, 40},
                                 StateCount{"default", "old", TaskState::kFailed, 2}});
  TaskSpec once = Spec();
  once.max_attempts = 1;
  std::string a = Submit(Spec()), b = Submit(once);
  auto leased = Lease(2);
  ASSERT_EQ(leased.size(), 2u);
  EngineOutput out;
  ASSERT_OK(engine_.Complete("default", a, leased[0].lease.token, "1", now_, &out));
  auto failed = engine_.Fail("default", b, leased[1].lease.token, "x", true, "", now_, &out);
  ASSERT_OK(failed);
  auto q = engine_.FindQueue("default", "q");
  EXPECT_EQ(q->counts[TaskState::kSucceeded], 41);
  EXPECT_EQ(q->counts[TaskState::kFailed], 1);
  EXPECT_EQ(q->counts[TaskState::kRunning], 0);
  ASSERT_OK(engine_.Retry(*failed, now_, &out));
  q = engine_.FindQueue("default", "q");
  EXPECT_EQ(q->counts[TaskState::kFailed], 0);
  EXPECT_EQ(q->counts[TaskState::kReady], 1);
  engine_.ForgetFinished("default", "q", TaskState::kSucceeded);
  EXPECT_EQ(engine_.FindQueue("default", "q")->counts[TaskState::kSucceeded], 40);
  EXPECT_EQ(engine_.FindQueue("default", "old")->counts[TaskState::kFailed], 2);
}

// Conservation: random operations; every submitted task ends up exactly once
// either live in the engine or reported finished.
TEST_F(EngineTest, RandomizedOperationsConserveTasks) {
  std::mt19937 rng(1234);
  std::set<std::string> submitted, finished;
  std::vector<LeasedTask> held;
  for (int step = 0; step < 20'000; ++step) {
    EngineOutput out;
    int op = static_cast<int>(rng() % 6);
    if (op == 0) {
      TaskSpec s = Spec();
      s.priority = static_cast<int>(rng() % 3);
      s.delay_ms = static_cast<std::int64_t>(rng() % 3) * 50;
      s.max_attempts = 1 + static_cast<int>(rng() % 3);
      s.backoff = Backoff{10, 100, 2.0, 0.5};
      auto r = engine_.Submit({s}, now_, &out);
      if (r.ok()) submitted.insert(r->at(0).id);
    } else if (op == 1) {
      LeaseRequest req{"default", "w", {"q"}, 1 + rng() % 3, 100};
      auto r = engine_.Lease(req, now_, &out);
      ASSERT_OK(r);
      for (auto& l : *r) held.push_back(l);
    } else if (op == 2 && !held.empty()) {
      std::size_t i = rng() % held.size();
      auto r = engine_.Complete("default", held[i].task.id, held[i].lease.token, "1", now_, &out);
      held.erase(held.begin() + static_cast<long>(i));
      (void)r;
    } else if (op == 3 && !held.empty()) {
      std::size_t i = rng() % held.size();
      (void)engine_.Fail("default", held[i].task.id, held[i].lease.token, "e", rng() % 2, "", now_, &out);
      held.erase(held.begin() + static_cast<long>(i));
    } else if (op == 4 && !submitted.empty()) {
      auto it = submitted.begin();
      std::advance(it, static_cast<long>(rng() % submitted.size()));
      (void)engine_.Cancel("default", *it, now_, &out);
    } else {
      now_ += static_cast<TimeMs>(rng() % 40);
      engine_.Tick(now_, &out);
    }
    for (const std::string& id : out.finished) {
      ASSERT_TRUE(submitted.count(id));
      ASSERT_TRUE(finished.insert(id).second) << "finished twice: " << id;
    }
  }
  std::size_t live = 0;
  for (const std::string& id : submitted) {
    bool is_live = engine_.IsLive("default", id);
    ASSERT_NE(is_live, finished.count(id) > 0) << id;
    live += is_live;
  }
  EXPECT_EQ(live, engine_.live_tasks());
  EXPECT_GT(finished.size(), 100u);
}

}  // namespace
}  // namespace dray
