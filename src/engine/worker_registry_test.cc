// Registered workers in the engine (issue 7, first step): liveness by any
// sign of life, a dead worker's tasks released at once rather than at their
// lease's end, a leaving worker's too, and the index of held tasks.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "support/status_assert.h"

namespace dray {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr std::int64_t kGrace = 10'000;
constexpr std::int64_t kLease = 600'000;  // far longer than the grace

class WorkerRegistryTest : public ::testing::Test {
 protected:
  WorkerRegistryTest() : engine_(Options()) {}
  static EngineOptions Options() {
    EngineOptions o;
    o.idempotency_window_ms = 60'000;
    o.seed = 3;
    o.worker_grace_ms = kGrace;
    return o;
  }
  void Register(const std::string& id) {
    WorkerSpec w;
    w.id = id;
    w.capacity = {{"cpu", 4000}, {"memory_mb", 8192}};
    w.labels = {{"zone", "a"}};
    w.queues = {"q"};
    EngineOutput out;
    engine_.RegisterWorker(std::move(w), now_, &out);
  }
  std::vector<std::string> Submit(int n) {
    std::vector<TaskSpec> specs(static_cast<std::size_t>(n));
    for (TaskSpec& s : specs) {
      s.type = "t";
      s.queue = "q";
      s.backoff = Backoff{0, 0, 1.0, 0.0};
    }
    EngineOutput out;
    auto r = engine_.Submit(std::move(specs), now_, &out);
    std::vector<std::string> ids;
    for (const auto& o : *r) ids.push_back(o.id);
    return ids;
  }
  std::vector<LeasedTask> Lease(const std::string& worker, std::size_t max) {
    EngineOutput out;
    auto r = engine_.Lease(LeaseRequest{"default", worker, {"q"}, max, kLease}, now_, &out);
    EXPECT_OK(r);
    return r.ok() ? *r : std::vector<LeasedTask>{};
  }
  TaskState StateAt(const std::string& id, TimeMs t) {
    now_ = t;
    EngineOutput out;
    engine_.Tick(now_, &out);
    engine_.Tick(now_, &out);  // a released task's zero backoff ends at once
    auto task = engine_.Find("default", id);
    return task ? task->state : TaskState::kSucceeded;
  }

  TimeMs now_ = kT0;
  Engine engine_;
};

TEST_F(WorkerRegistryTest, ADeadWorkersTasksAreReleasedAtOnceNotAtLeaseEnd) {
  Register("w1");
  auto ids = Submit(2);
  auto held = Lease("w1", 2);
  ASSERT_EQ(held.size(), 2u);
  auto info = engine_.FindWorker("default", "w1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->running.size(), 2u);
  EXPECT_EQ(info->spec.capacity.at("cpu"), 4000);
  EXPECT_EQ(engine_.NextWakeup(), kT0 + kGrace);
  // Within the grace: still running.
  EXPECT_EQ(StateAt(ids[0], kT0 + kGrace - 1), TaskState::kRunning);
  // Past it, long before the 10-minute lease ends: released, retried.
  EXPECT_EQ(StateAt(ids[0], kT0 + kGrace), TaskState::kReady);
  EXPECT_EQ(StateAt(ids[1], kT0 + kGrace), TaskState::kReady);
  auto t = engine_.Find("default", ids[0]);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->attempts, 1);
  EXPECT_NE(t->error.find("worker w1 declared dead"), std::string::npos) << t->error;
  EXPECT_FALSE(engine_.FindWorker("default", "w1").has_value());
  // The dead worker's late completion is refused: its lease is stale.
  EngineOutput out;
  EXPECT_EQ(engine_.Complete("default", ids[0], held[0].lease.token, "1", now_, &out).status().code(),
            StatusCode::kAborted);
  // Its heartbeat says to register again.
  EXPECT_EQ(engine_.WorkerHeartbeat("default", "w1", now_, &out).status().code(),
            StatusCode::kNotFound);
}

TEST_F(WorkerRegistryTest, AnySignOfLifeKeepsAWorkerAlive) {
  Register("w1");
  auto ids = Submit(1);
  auto held = Lease("w1", 1);
  ASSERT_EQ(held.size(), 1u);
  EngineOutput out;
  // A task heartbeat at 8 s, a worker heartbeat at 16 s, a lease at 24 s.
  now_ = kT0 + 8'000;
  ASSERT_OK(engine_.Heartbeat("default", ids[0], held[0].lease.token, 0, now_, &out));
  now_ = kT0 + 16'000;
  ASSERT_OK(engine_.WorkerHeartbeat("default", "w1", now_, &out));
  now_ = kT0 + 24'000;
  Lease("w1", 1);
  EXPECT_EQ(StateAt(ids[0], kT0 + 33'999), TaskState::kRunning);
  EXPECT_EQ(engine_.FindWorker("default", "w1")->last_seen, kT0 + 24'000);
  EXPECT_EQ(StateAt(ids[0], kT0 + 34'000), TaskState::kReady);
}

TEST_F(WorkerRegistryTest, TheHeldTaskIndexFollowsEveryWayATaskLeavesRunning) {
  Register("w1");
  Register("w2");
  auto ids = Submit(4);
  auto held = Lease("w1", 3);
  ASSERT_EQ(held.size(), 3u);
  EngineOutput out;
  ASSERT_OK(engine_.Complete("default", held[0].task.id, held[0].lease.token, "1", now_, &out));
  ASSERT_OK(engine_.Fail("default", held[1].task.id, held[1].lease.token, "x", true, "", now_, &out));
  ASSERT_OK(engine_.Cancel("default", held[2].task.id, now_, &out));  // asked to stop: still held
  EXPECT_EQ(engine_.FindWorker("default", "w1")->running,
            std::vector<std::string>{held[2].task.id});
  // The failed one (retried at once) goes to w2.
  auto other = Lease("w2", 2);
  EXPECT_EQ(other.size(), 2u);
  EXPECT_EQ(engine_.FindWorker("default", "w2")->running.size(), 2u);
  // Leaving releases what it holds at once.
  ASSERT_OK(engine_.DeregisterWorker("default", "w2", now_, &out));
  for (const LeasedTask& l : other) {
    EXPECT_EQ(StateAt(l.task.id, now_), TaskState::kReady);
    auto t = engine_.Find("default", l.task.id);
    ASSERT_TRUE(t.has_value());
    EXPECT_NE(t->error.find("left while holding"), std::string::npos) << t->error;
  }
  EXPECT_EQ(engine_.DeregisterWorker("default", "w2", now_, &out).code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_.Workers("default").size(), 1u);
}

TEST_F(WorkerRegistryTest, AnUnregisteredWorkerKeepsTheLeaseRulesAlone) {
  auto ids = Submit(1);
  auto held = Lease("anonymous", 1);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(StateAt(ids[0], kT0 + kGrace * 10), TaskState::kRunning);
  EXPECT_EQ(StateAt(ids[0], kT0 + kLease), TaskState::kReady);  // the lease's own end
}

TEST_F(WorkerRegistryTest, ATaskLeasedBeforeRegisteringIsAdoptedAtItsNextHeartbeat) {
  auto ids = Submit(1);
  auto held = Lease("w1", 1);  // not registered yet (a server restart, say)
  Register("w1");
  EXPECT_TRUE(engine_.FindWorker("default", "w1")->running.empty());
  EngineOutput out;
  ASSERT_OK(engine_.Heartbeat("default", ids[0], held[0].lease.token, 0, now_, &out));
  EXPECT_EQ(engine_.FindWorker("default", "w1")->running, std::vector<std::string>{ids[0]});
  EXPECT_EQ(StateAt(ids[0], now_ + kGrace), TaskState::kReady);
}

}  // namespace
}  // namespace dray
