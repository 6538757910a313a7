// Flow control in the engine (issue 5): concurrency keys (serial order),
// queue concurrency, rate limits and fairness, all with a fake clock.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "engine/engine.h"
#include "support/status_assert.h"

namespace dray {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

class LimitsTest : public ::testing::Test {
 protected:
  LimitsTest() : engine_(EngineOptions{60'000, 1'000'000, 7}) {}

  std::string Submit(TaskSpec spec) {
    EngineOutput out;
    auto r = engine_.Submit({std::move(spec)}, now_, &out);
    EXPECT_OK(r);
    return r.ok() ? r->at(0).id : "";
  }
  static TaskSpec Keyed(std::string key, std::string queue = "q") {
    TaskSpec s;
    s.type = "t";
    s.queue = std::move(queue);
    s.concurrency_key = std::move(key);
    s.backoff = Backoff{100, 100, 1.0, 0.0};
    return s;
  }
  std::vector<LeasedTask> Lease(std::size_t max, std::vector<std::string> queues = {"q"},
                                const std::string& worker = "w") {
    EngineOutput out;
    LeaseRequest req;
    req.worker = worker;
    req.queues = std::move(queues);
    req.max = max;
    req.lease_ms = 60'000;
    auto r = engine_.Lease(req, now_, &out);
    EXPECT_OK(r);
    return r.ok() ? *r : std::vector<LeasedTask>{};
  }
  void Complete(const LeasedTask& l) {
    EngineOutput out;
    auto r = engine_.Complete("default", l.task.id, l.lease.token, "1", now_, &out);
    ASSERT_OK(r);
  }
  void Fail(const LeasedTask& l, bool retry = true) {
    EngineOutput out;
    auto r = engine_.Fail("default", l.task.id, l.lease.token, "boom", retry, "", now_, &out);
    ASSERT_OK(r);
  }
  void Patch(const std::string& queue, const std::function<void(QueueSettings*)>& f) {
    EngineOutput out;
    auto r = engine_.PatchQueue("default", queue,
                                [&](QueueSettings* s) {
                                  f(s);
                                  return Status::Ok();
                                },
                                &out);
    ASSERT_OK(r);
  }
  std::string ReasonOf(const std::string& id) {
    std::optional<Task> t = engine_.Find("default", id);
    return t ? t->wait_reason : "gone";
  }

  TimeMs now_ = kT0;
  Engine engine_;
};

TEST_F(LimitsTest, SerialKeyStartsInSubmitOrderOneAtATime) {
  std::vector<std::string> a, b;
  for (int i = 0; i < 4; ++i) {
    a.push_back(Submit(Keyed("acct-a")));
    b.push_back(Submit(Keyed("acct-b")));
  }
  // One of each key at a time, whatever a worker asks for.
  auto got = Lease(10);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].task.id, a[0]);
  EXPECT_EQ(got[1].task.id, b[0]);
  EXPECT_TRUE(Lease(10).empty());
  EXPECT_EQ(ReasonOf(a[1]), "concurrency_key");
  EXPECT_NE(engine_.Find("default", a[1])->wait_detail.find("1 running"), std::string::npos);
  Complete(got[0]);
  got = Lease(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, a[1]);
  EXPECT_EQ(got[0].task.concurrency_key, "acct-a");
}

TEST_F(LimitsTest, SerialKeyWaitsForTheRetriesOfTheTaskBeforeIt) {
  TaskSpec first = Keyed("k");
  first.max_attempts = 3;
  std::string id1 = Submit(first);
  std::string id2 = Submit(Keyed("k"));
  auto got = Lease(5);
  ASSERT_EQ(got.size(), 1u);
  Fail(got[0]);  // retried after 100 ms of backoff
  EXPECT_EQ(ReasonOf(id1), "backoff");
  EXPECT_EQ(ReasonOf(id2), "concurrency_key");
  EXPECT_TRUE(Lease(5).empty()) << "the second task must not overtake the first's retry";
  now_ += 100;
  got = Lease(5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, id1);
  EXPECT_EQ(got[0].task.attempts, 2);
  // A lease that expires is an ended attempt too: still first.
  now_ += 60'000;
  EngineOutput out;
  engine_.Tick(now_, &out);
  now_ += 100;
  got = Lease(5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, id1);
  Fail(got[0]);  // third attempt: out of attempts, failed
  EXPECT_EQ(ReasonOf(id1), "gone");
  got = Lease(5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, id2);
}

TEST_F(LimitsTest, KeyLimitFromTheTaskOrTheQueue) {
  for (int i = 0; i < 6; ++i) {
    TaskSpec s = Keyed("wide");
    s.concurrency_limit = 3;
    Submit(s);
    Submit(Keyed("narrow"));
  }
  auto got = Lease(100);
  std::map<std::string, int> per_key;
  for (const auto& l : got) per_key[l.task.concurrency_key]++;
  EXPECT_EQ(per_key["wide"], 3);
  EXPECT_EQ(per_key["narrow"], 1);
  Patch("q", [](QueueSettings* s) { s->key_concurrency = 2; });
  got = Lease(100);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.concurrency_key, "narrow");
}

TEST_F(LimitsTest, KeyLimitLoweredWhileTasksRunHoldsNewStartsBack) {
  Patch("q", [](QueueSettings* s) { s->key_concurrency = 3; });
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit(Keyed("k")));
  auto running = Lease(10);
  ASSERT_EQ(running.size(), 3u);
  Patch("q", [](QueueSettings* s) { s->key_concurrency = 1; });
  Complete(running[0]);
  EXPECT_TRUE(Lease(10).empty()) << "two still run; the limit is now one";
  Complete(running[1]);
  EXPECT_TRUE(Lease(10).empty());
  Complete(running[2]);
  auto got = Lease(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, ids[3]);
}

TEST_F(LimitsTest, CancelledTaskOfAKeyLetsTheNextOneStart) {
  std::string id1 = Submit(Keyed("k"));
  std::string id2 = Submit(Keyed("k"));
  std::string id3 = Submit(Keyed("k"));
  EngineOutput out;
  ASSERT_OK(engine_.Cancel("default", id1, now_, &out));
  EXPECT_TRUE(out.made_ready);
  ASSERT_OK(engine_.Cancel("default", id3, now_, &out));
  auto got = Lease(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, id2);
}

TEST_F(LimitsTest, QueueConcurrencyHoldsAcrossWorkers) {
  Patch("q", [](QueueSettings* s) { s->concurrency = 3; });
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(Submit(Keyed("", "q")));
  std::vector<LeasedTask> running;
  for (const char* w : {"w1", "w2", "w3", "w4"}) {
    for (auto& l : Lease(2, {"q"}, w)) running.push_back(l);
  }
  EXPECT_EQ(running.size(), 3u);
  EXPECT_EQ(ReasonOf(ids.back()), "queue_concurrency");
  Fail(running[0], /*retry=*/false);
  EngineOutput out;
  EXPECT_EQ(Lease(5).size(), 1u);
  Patch("q", [](QueueSettings* s) { s->concurrency = 0; });
  EXPECT_EQ(Lease(100).size(), 6u);
}

TEST_F(LimitsTest, RateLimitIsATokenBucket) {
  Patch("q", [](QueueSettings* s) {
    s->rate = 10;  // one every 100 ms
    s->burst = 3;
  });
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(Submit(Keyed("", "q")));
  EXPECT_EQ(Lease(100).size(), 3u);  // the burst
  EXPECT_TRUE(Lease(100).empty());
  EXPECT_EQ(ReasonOf(ids.back()), "rate_limit");
  // Waiters are woken when the next token comes.
  ASSERT_TRUE(engine_.NextWakeup().has_value());
  EXPECT_EQ(*engine_.NextWakeup(), now_ + 100);
  now_ += 99;
  EXPECT_TRUE(Lease(100).empty());
  now_ += 1;
  EngineOutput out;
  engine_.Tick(now_, &out);
  EXPECT_TRUE(out.made_ready);
  EXPECT_EQ(Lease(100).size(), 1u);
  // Over 5 s of steady asking, starts follow the rate.
  int started = 0;
  for (int ms = 0; ms < 5000; ms += 10) {
    now_ += 10;
    started += static_cast<int>(Lease(100).size());
  }
  EXPECT_EQ(started, 50);
  // Idle time fills the bucket up to the burst, no further.
  now_ += 10'000;
  EXPECT_EQ(Lease(100).size(), 3u);
}

TEST_F(LimitsTest, RestoredQueueStartsWithAnEmptyBucket) {
  QueueRecord q{"default", "q", QueueSettings{}};
  q.settings.rate = 2;
  q.settings.burst = 10;
  engine_.RestoreQueue(q);
  for (int i = 0; i < 5; ++i) Submit(Keyed("", "q"));
  EXPECT_TRUE(Lease(10).empty()) << "a restart must not grant a fresh burst";
  now_ += 500;
  EXPECT_EQ(Lease(10).size(), 1u);
}

TEST_F(LimitsTest, WeightsShareLeasesBetweenQueues) {
  Patch("big", [](QueueSettings* s) { s->weight = 3; });
  Patch("small", [](QueueSettings* s) { s->weight = 1; });
  for (int i = 0; i < 1000; ++i) {
    Submit(Keyed("", "big"));
    Submit(Keyed("", "small"));
  }
  std::map<std::string, int> got;
  for (int i = 0; i < 100; ++i) {
    for (const auto& l : Lease(4, {"big", "small"})) got[l.task.queue]++;
  }
  EXPECT_EQ(got["big"], 300);
  EXPECT_EQ(got["small"], 100);
}

TEST_F(LimitsTest, BusyQueueDoesNotStarveAQuietOne) {
  for (int i = 0; i < 1000; ++i) Submit(Keyed("", "busy"));
  for (int i = 0; i < 500; ++i) ASSERT_EQ(Lease(1, {"busy", "quiet"}).size(), 1u);
  // The quiet queue was idle: it gets no stored credit, but its task is
  // next, and after that the two alternate.
  std::string quiet1 = Submit(Keyed("", "quiet"));
  std::string quiet2 = Submit(Keyed("", "quiet"));
  auto got = Lease(4, {"busy", "quiet"});
  ASSERT_EQ(got.size(), 4u);
  std::vector<std::string> queues;
  for (const auto& l : got) queues.push_back(l.task.queue);
  EXPECT_EQ(queues, (std::vector<std::string>{"quiet", "busy", "quiet", "busy"}));
}

TEST_F(LimitsTest, PriorityStillOrdersWithinAQueue) {
  Patch("q", [](QueueSettings* s) { s->concurrency = 1; });
  TaskSpec low = Keyed("", "q"), high = Keyed("", "q");
  low.priority = 5;
  high.priority = -5;
  Submit(low);
  std::string hi = Submit(high);
  auto got = Lease(5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, hi);
}

TEST_F(LimitsTest, WaitReasons) {
  TaskSpec later = Keyed("", "q");
  later.delay_ms = 1000;
  std::string scheduled = Submit(later);
  std::string ready = Submit(Keyed("", "q"));
  EXPECT_EQ(ReasonOf(scheduled), "scheduled");
  EXPECT_EQ(ReasonOf(ready), "worker");
  Patch("q", [](QueueSettings* s) { s->paused = true; });
  EXPECT_EQ(ReasonOf(ready), "queue_paused");
  Patch("q", [](QueueSettings* s) { s->paused = false; });
  auto got = Lease(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(ReasonOf(ready), "");  // running: it does not wait
}

TEST_F(LimitsTest, RestoredTasksKeepTheirKeyOrderAndRunningCount) {
  // The store hands tasks back in any order.
  Engine restored(EngineOptions{60'000, 1000, 1});
  std::vector<Task> tasks;
  for (int i = 0; i < 4; ++i) {
    Task t;
    t.id = "0193a1b2-c3d4-7e5f-8a9b-00000000000" + std::to_string(i);
    t.type = "t";
    t.queue = "q";
    t.concurrency_key = "k";
    t.seq = static_cast<std::uint64_t>(i + 1);
    t.state = TaskState::kReady;
    t.created_at = t.updated_at = t.run_at = kT0;
    tasks.push_back(t);
  }
  tasks[1].state = TaskState::kRunning;  // the second was running when it stopped
  tasks[1].attempts = 1;
  tasks[1].lease_token = 9;
  tasks[1].lease_expires_at = kT0 + 60'000;
  tasks[1].worker = "w";
  tasks[1].history.push_back(Attempt{1, "w", kT0, 0, AttemptOutcome::kRunning, ""});
  for (int i : {3, 1, 0, 2}) ASSERT_OK(restored.RestoreTask(Task(tasks[i])));
  EngineOutput out;
  LeaseRequest req{"default", "w2", {"q"}, 10, 1000};
  auto got = restored.Lease(req, kT0, &out);
  ASSERT_OK(got);
  EXPECT_TRUE(got->empty()) << "task 1 runs: nothing else of its key may start";
  auto done = restored.Complete("default", tasks[1].id, "9", "1", kT0, &out);
  ASSERT_OK(done);
  got = restored.Lease(req, kT0, &out);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->at(0).task.id, tasks[0].id);
}

// Random keyed workloads on several queues with random limits, worker
// failures, expiries, cancels and limit changes; after every step no key
// and no queue runs more than its limit, keys start in submit order, and
// no queue starts more than its bucket allows.
TEST_F(LimitsTest, RandomizedLimitsAreNeverExceeded) {
  std::mt19937_64 rng(99);
  const std::vector<std::string> queues = {"q0", "q1", "q2"};
  std::map<std::string, QueueSettings> settings;
  for (const auto& q : queues) {
    Patch(q, [&](QueueSettings* s) {
      s->concurrency = static_cast<std::int32_t>(rng() % 4);  // 0 = none
      s->key_concurrency = 1 + static_cast<std::int32_t>(rng() % 2);
      s->rate = q == "q2" ? 50 : 0;
      s->burst = 5;
    });
    settings[q] = engine_.FindQueue("default", q)->settings;
  }
  struct Info {
    std::string queue, key;
    std::int32_t limit = 0;
    std::uint64_t order = 0;  // submit order
  };
  std::map<std::string, Info> info;
  std::map<std::string, LeasedTask> running;
  // (queue, key) -> submit order -> the task's own limit (0: the queue's)
  std::map<std::pair<std::string, std::string>, std::map<std::uint64_t, std::int32_t>> unfinished;
  std::uint64_t order = 0;
  std::vector<TimeMs> q2_starts;
  int leased_total = 0;
  for (int step = 0; step < 30'000; ++step) {
    EngineOutput out;
    const int op = static_cast<int>(rng() % 10);
    if (op < 3) {
      const std::string& q = queues[rng() % queues.size()];
      TaskSpec s = Keyed(rng() % 4 ? "k" + std::to_string(rng() % 5) : "", q);
      if (!s.concurrency_key.empty() && rng() % 5 == 0) s.concurrency_limit = 2;
      s.max_attempts = 1 + static_cast<std::int32_t>(rng() % 3);
      s.backoff = Backoff{static_cast<std::int64_t>(rng() % 50), 100, 2.0, 0.0};
      auto r = engine_.Submit({s}, now_, &out);
      ASSERT_OK(r);
      info[r->at(0).id] = Info{q, s.concurrency_key, s.concurrency_limit.value_or(0), ++order};
      if (!s.concurrency_key.empty()) {
        unfinished[{q, s.concurrency_key}][order] = s.concurrency_limit.value_or(0);
      }
    } else if (op < 6) {
      std::vector<std::string> ask = queues;
      std::shuffle(ask.begin(), ask.end(), rng);
      ask.resize(1 + rng() % 3);
      LeaseRequest req{"default", "w" + std::to_string(rng() % 4), ask, 1 + rng() % 4, 200};
      auto r = engine_.Lease(req, now_, &out);
      ASSERT_OK(r);
      for (auto& l : *r) {
        const Info& in = info.at(l.task.id);
        if (!in.key.empty()) {
          // In submit order: only tasks inside the key's window (its
          // oldest unfinished task's limit) may start.
          const auto& u = unfinished[{in.queue, in.key}];
          ASSERT_FALSE(u.empty());
          const std::int32_t front = u.begin()->second;
          const std::int32_t limit = front ? front : settings[in.queue].key_concurrency;
          std::int32_t rank = 0;
          for (const auto& [o, unused] : u) {
            if (o == in.order) break;
            ++rank;
          }
          ASSERT_LT(rank, limit) << "key " << in.key << " started out of order";
        }
        if (in.queue == "q2") q2_starts.push_back(now_);
        running[l.task.id] = l;
        ++leased_total;
      }
    } else if (op < 8 && !running.empty()) {
      auto it = running.begin();
      std::advance(it, static_cast<long>(rng() % running.size()));
      if (rng() % 2) {
        (void)engine_.Complete("default", it->first, it->second.lease.token, "1", now_, &out);
      } else {
        (void)engine_.Fail("default", it->first, it->second.lease.token, "e", rng() % 2, "", now_,
                           &out);
      }
      running.erase(it);
    } else if (op == 8 && !info.empty() && rng() % 4 == 0) {
      auto it = info.begin();
      std::advance(it, static_cast<long>(rng() % info.size()));
      (void)engine_.Cancel("default", it->first, now_, &out);
    } else {
      now_ += static_cast<TimeMs>(rng() % 30);
      engine_.Tick(now_, &out);
    }
    for (const std::string& id : out.finished) {
      const Info& in = info.at(id);
      if (!in.key.empty()) unfinished[{in.queue, in.key}].erase(in.order);
      running.erase(id);
    }
    // Expired leases end attempts: drop what the engine no longer runs.
    for (auto it = running.begin(); it != running.end();) {
      std::optional<Task> t = engine_.Find("default", it->first);
      if (!t || t->state != TaskState::kRunning || t->lease_token != it->second.task.lease_token) {
        it = running.erase(it);
      } else {
        ++it;
      }
    }
    // The invariants, from the engine's own view of every running task.
    std::map<std::string, int> per_queue;
    std::map<std::pair<std::string, std::string>, int> per_key;
    for (const auto& [id, l] : running) {
      const Info& in = info.at(id);
      per_queue[in.queue]++;
      if (!in.key.empty()) per_key[{in.queue, in.key}]++;
    }
    for (const auto& [q, n] : per_queue) {
      if (settings[q].concurrency > 0) {
        ASSERT_LE(n, settings[q].concurrency) << q;
      }
    }
    for (const auto& [qk, n] : per_key) ASSERT_LE(n, 2) << qk.first << "/" << qk.second;
    for (const auto& [q, s] : settings) {
      auto qi = engine_.FindQueue("default", q);
      ASSERT_EQ(qi->counts[TaskState::kRunning], per_queue[q]) << q;
    }
  }
  // The bucket: in any window of w ms, at most burst + rate * w / 1000 starts.
  for (std::size_t i = 0; i < q2_starts.size(); ++i) {
    for (std::size_t j = i; j < q2_starts.size(); ++j) {
      const double w = static_cast<double>(q2_starts[j] - q2_starts[i]);
      ASSERT_LE(static_cast<double>(j - i + 1), 5 + 50 * w / 1000 + 1e-9);
      if (w > 2000) break;
    }
  }
  EXPECT_GT(leased_total, 1000);
  EXPECT_GT(q2_starts.size(), 100u);
}

}  // namespace
}  // namespace dray
