// Placement in the engine (issue 7): capacity taken at lease and given back
// at every end of an attempt, label selectors, unschedulable tasks, the
// reservation that keeps a large task from starving and the backfill
// around it, binpack and spread among waiting workers, preferences,
// broadcast copies, affinity by key, GPU devices, and a randomized
// property test of the whole.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "engine/engine.h"
#include "support/status_assert.h"

namespace dray {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr std::int64_t kGrace = 5'000;
constexpr std::int64_t kLease = 600'000;

class PlacementTest : public ::testing::Test {
 protected:
  PlacementTest() : engine_(Options()) {}
  static EngineOptions Options() {
    EngineOptions o;
    o.idempotency_window_ms = 60'000;
    o.seed = 5;
    o.worker_grace_ms = kGrace;
    return o;
  }
  void Register(const std::string& id, std::map<std::string, std::int64_t> capacity,
                std::map<std::string, std::string> labels = {},
                std::vector<std::string> gpu_devices = {}) {
    WorkerSpec w;
    w.id = id;
    w.capacity = std::move(capacity);
    w.labels = std::move(labels);
    w.gpu_devices = std::move(gpu_devices);
    EngineOutput out;
    engine_.RegisterWorker(std::move(w), now_, &out);
  }
  static TaskSpec Spec(std::map<std::string, std::int64_t> resources,
                       std::vector<LabelSelector> require = {}) {
    TaskSpec s;
    s.type = "t";
    s.queue = "q";
    s.backoff = Backoff{0, 0, 1.0, 0.0};
    s.placement.resources = std::move(resources);
    s.placement.require = std::move(require);
    return s;
  }
  std::string Submit(TaskSpec spec) {
    EngineOutput out;
    std::vector<TaskSpec> specs;
    specs.push_back(std::move(spec));
    auto r = engine_.Submit(std::move(specs), now_, &out);
    EXPECT_OK(r);
    return r.ok() ? (*r)[0].id : std::string();
  }
  std::vector<LeasedTask> Lease(const std::string& worker, std::size_t max = 1) {
    EngineOutput out;
    auto r = engine_.Lease(LeaseRequest{"default", worker, {"q"}, max, kLease}, now_, &out);
    EXPECT_OK(r);
    return r.ok() ? *r : std::vector<LeasedTask>{};
  }
  void Complete(const LeasedTask& lt) {
    EngineOutput out;
    ASSERT_OK(engine_.Complete("default", lt.task.id, lt.lease.token, "1", now_, &out));
  }
  std::map<std::string, std::int64_t> InUse(const std::string& worker) {
    auto w = engine_.FindWorker("default", worker);
    return w ? w->in_use : std::map<std::string, std::int64_t>{};
  }
  Task Get(const std::string& id) { return engine_.Find("default", id).value_or(Task{}); }

  TimeMs now_ = kT0;
  Engine engine_;
};

LabelSelector Sel(std::string key, SelectorOp op, std::vector<std::string> values = {}) {
  return LabelSelector{std::move(key), op, std::move(values)};
}

TEST_F(PlacementTest, CapacityIsTakenAtLeaseAndGivenBackAtEveryEnd) {
  Register("w", {{"cpu", 4000}, {"memory_mb", 8192}});
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit(Spec({{"cpu", 1500}, {"memory_mb", 1000}})));
  auto held = Lease("w", 5);
  ASSERT_EQ(held.size(), 2u);  // a third would need 4500 millicores
  EXPECT_EQ(InUse("w"), (std::map<std::string, std::int64_t>{{"cpu", 3000}, {"memory_mb", 2000}}));
  EXPECT_EQ(Get(ids[2]).wait_reason, "resources");

  // Complete: given back, and the next one fits.
  Complete(held[0]);
  EXPECT_EQ(InUse("w").at("cpu"), 1500);
  auto next = Lease("w", 5);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(InUse("w").at("cpu"), 3000);

  // Fail (retried), cancel while running (ended by the worker's fail),
  // and the lease running out: each gives it back.
  EngineOutput out;
  ASSERT_TRUE(engine_.Fail("default", held[1].task.id, held[1].lease.token, "boom", true, "",
                           now_, &out).ok());
  EXPECT_EQ(InUse("w").at("cpu"), 1500);
  auto again = Lease("w");
  ASSERT_EQ(again.size(), 1u);
  ASSERT_OK(engine_.Cancel("default", again[0].task.id, now_, &out));
  EXPECT_EQ(InUse("w").at("cpu"), 3000);  // asked to stop: still running, still held
  ASSERT_TRUE(engine_.Fail("default", again[0].task.id, again[0].lease.token, "stopped", false,
                           "", now_, &out).ok());
  EXPECT_EQ(InUse("w").at("cpu"), 1500);
  {
    EngineOutput o2;
    auto r = engine_.Lease(LeaseRequest{"default", "w", {"q"}, 1, 1000}, now_, &o2);
    ASSERT_EQ(r->size(), 1u);
  }
  EXPECT_EQ(InUse("w").at("cpu"), 3000);
  now_ += 1000;
  EngineOutput hb;
  ASSERT_OK(engine_.WorkerHeartbeat("default", "w", now_, &hb));  // alive, lease lapsed
  EXPECT_EQ(InUse("w").at("cpu"), 1500);
}

TEST_F(PlacementTest, AWorkersDeathGivesItsCapacityBackWithItsTasks) {
  Register("a", {{"cpu", 2000}});
  Register("b", {{"cpu", 2000}});
  std::string id = Submit(Spec({{"cpu", 2000}}));
  ASSERT_EQ(Lease("a").size(), 1u);
  EXPECT_TRUE(Lease("b").empty());
  now_ += kGrace;  // a goes silent
  EngineOutput out;
  ASSERT_OK(engine_.WorkerHeartbeat("default", "b", now_, &out));
  engine_.Tick(now_, &out);
  EXPECT_FALSE(engine_.FindWorker("default", "a").has_value());
  auto moved = Lease("b");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].task.id, id);
  EXPECT_EQ(InUse("b").at("cpu"), 2000);
}

TEST_F(PlacementTest, LabelSelectorsEqualsInNotInExistsNotExists) {
  Register("arm", {{"cpu", 8000}}, {{"arch", "arm64"}, {"zone", "a"}});
  Register("x86", {{"cpu", 8000}}, {{"arch", "amd64"}, {"zone", "b"}, {"spot", "1"}});
  const std::string eq = Submit(Spec({}, {Sel("arch", SelectorOp::kEquals, {"arm64"})}));
  const std::string in = Submit(Spec({}, {Sel("zone", SelectorOp::kIn, {"b", "c"})}));
  const std::string notin = Submit(Spec({}, {Sel("zone", SelectorOp::kNotIn, {"b"})}));
  const std::string exists = Submit(Spec({}, {Sel("spot", SelectorOp::kExists)}));
  const std::string notexists = Submit(Spec({}, {Sel("spot", SelectorOp::kNotExists)}));
  std::set<std::string> on_arm, on_x86;
  for (const auto& lt : Lease("arm", 10)) on_arm.insert(lt.task.id);
  for (const auto& lt : Lease("x86", 10)) on_x86.insert(lt.task.id);
  EXPECT_EQ(on_arm, (std::set<std::string>{eq, notin, notexists}));
  EXPECT_EQ(on_x86, (std::set<std::string>{in, exists}));
}

TEST_F(PlacementTest, AnUnregisteredWorkerTakesOnlyTasksThatNeedNothing) {
  Register("w", {{"cpu", 1000}});
  const std::string placed = Submit(Spec({{"cpu", 500}}));
  const std::string plain = Submit(Spec({}));
  auto got = Lease("anonymous", 5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, plain);
  auto mine = Lease("w", 5);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].task.id, placed);
}

TEST_F(PlacementTest, UnschedulableSaysWhyAndClearsWhenAWorkerFitsJoins) {
  const std::string big = Submit(Spec({{"cpu", 16000}}));
  EXPECT_EQ(Get(big).wait_reason, "unschedulable");
  EXPECT_NE(Get(big).wait_detail.find("no live registered worker"), std::string::npos);
  Register("small", {{"cpu", 4000}});
  EXPECT_EQ(Get(big).wait_reason, "unschedulable");
  EXPECT_NE(Get(big).wait_detail.find("requests cpu=16000"), std::string::npos)
      << Get(big).wait_detail;
  EXPECT_NE(Get(big).wait_detail.find("worker small has cpu=4000"), std::string::npos);
  EXPECT_TRUE(Lease("small").empty());

  const std::string gpu = Submit(Spec({}, {Sel("gpu_model", SelectorOp::kEquals, {"a100"})}));
  EXPECT_EQ(Get(gpu).wait_reason, "unschedulable");
  EXPECT_NE(Get(gpu).wait_detail.find("gpu_model=a100"), std::string::npos)
      << Get(gpu).wait_detail;

  Register("large", {{"cpu", 16000}}, {{"gpu_model", "a100"}});
  EXPECT_EQ(Get(big).wait_reason, "worker");  // large has room: it has not asked yet
  EXPECT_EQ(Get(gpu).wait_reason, "worker");
  auto got = Lease("large", 5);
  EXPECT_EQ(got.size(), 2u);
  // It leaves: unschedulable again for a task like that.
  EngineOutput out;
  ASSERT_OK(engine_.DeregisterWorker("default", "large", now_, &out));
  engine_.Tick(now_, &out);  // its zero backoff ends
  EXPECT_EQ(Get(big).wait_reason, "unschedulable");
}

TEST_F(PlacementTest, TasksNoWorkerCanRunDoNotHoldBackThoseBehindThem) {
  Register("w", {{"cpu", 4000}}, {{"zone", "a"}});
  std::vector<std::string> nowhere;
  for (int i = 0; i < 20'000; ++i) {
    nowhere.push_back(Submit(Spec({{"cpu", 100}}, {Sel("zone", SelectorOp::kEquals, {"mars"})})));
  }
  const std::string runnable = Submit(Spec({{"cpu", 1000}}));
  auto got = Lease("w");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, runnable);
  EXPECT_EQ(Get(nowhere[0]).wait_reason, "unschedulable");
  // A worker that can run them joins: they are back in line, in order.
  Register("m", {{"cpu", 1000}}, {{"zone", "mars"}});
  EXPECT_EQ(Get(nowhere[0]).wait_reason, "worker");
  auto on_mars = Lease("m", 20);
  ASSERT_EQ(on_mars.size(), 10u);
  EXPECT_EQ(on_mars[0].task.id, nowhere[0]);
  EXPECT_EQ(on_mars[9].task.id, nowhere[9]);
}

TEST_F(PlacementTest, ALargeTaskReservesAWorkerAndIsNotStarvedBySmallOnes) {
  Register("w", {{"cpu", 4000}});
  std::vector<LeasedTask> running;
  for (int i = 0; i < 4; ++i) Submit(Spec({{"cpu", 1000}}));
  running = Lease("w", 4);
  ASSERT_EQ(running.size(), 4u);
  const std::string big = Submit(Spec({{"cpu", 4000}}));
  for (int i = 0; i < 10; ++i) Submit(Spec({{"cpu", 1000}}));  // behind it
  // As each small task ends, the freed room is kept for the large one.
  for (int i = 0; i < 3; ++i) {
    Complete(running[static_cast<std::size_t>(i)]);
    EXPECT_TRUE(Lease("w").empty()) << "a small task took room kept for the large one";
    EXPECT_EQ(engine_.FindWorker("default", "w")->reserved_for, big);
  }
  EXPECT_NE(Get(big).wait_detail.find("worker w is held for it"), std::string::npos);
  Complete(running[3]);
  auto got = Lease("w");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, big);
  EXPECT_TRUE(engine_.FindWorker("default", "w")->reserved_for.empty());
}

TEST_F(PlacementTest, SmallTasksBackfillWhenTheyEndBeforeTheLargeOneCouldStart) {
  Register("w", {{"cpu", 4000}});
  // Two running tasks that end within 60 s at the latest (their timeout).
  for (int i = 0; i < 2; ++i) {
    TaskSpec s = Spec({{"cpu", 1500}});
    s.timeout_ms = 60'000;
    Submit(std::move(s));
  }
  ASSERT_EQ(Lease("w", 2).size(), 2u);
  const std::string big = Submit(Spec({{"cpu", 4000}}));
  TaskSpec slow = Spec({{"cpu", 1000}});
  slow.timeout_ms = 120'000;  // could still hold the room when the big one may start
  const std::string slow_id = Submit(std::move(slow));
  TaskSpec quick = Spec({{"cpu", 1000}});
  quick.timeout_ms = 30'000;  // ends before the running ones must
  const std::string quick_id = Submit(std::move(quick));
  const std::string unbounded = Submit(Spec({{"cpu", 1000}}));  // no timeout: may never end
  now_ += 1000;
  auto got = Lease("w", 5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, quick_id);
  EXPECT_EQ(engine_.FindWorker("default", "w")->reserved_for, big);
  EXPECT_EQ(Get(slow_id).state, TaskState::kReady);
  EXPECT_EQ(Get(unbounded).state, TaskState::kReady);
}

TEST_F(PlacementTest, SmallTasksUseWhatTheReservationDoesNotNeed) {
  Register("w", {{"cpu", 8000}});
  Submit(Spec({{"cpu", 5000}}));
  ASSERT_EQ(Lease("w").size(), 1u);
  const std::string big = Submit(Spec({{"cpu", 6000}}));
  const std::string small = Submit(Spec({{"cpu", 2000}}));
  // 3000 free; 6000 kept for `big` leaves 2000 of the 8000 outside it... 
  // once the 5000 ends. Now: 8000 - 5000 used - 6000 kept < 2000: no.
  EXPECT_TRUE(Lease("w").empty());
  EXPECT_EQ(engine_.FindWorker("default", "w")->reserved_for, big);
  // A second worker takes the large task; the reservation falls.
  Register("w2", {{"cpu", 6000}});
  auto got = Lease("w2");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.id, big);
  auto s = Lease("w");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].task.id, small);
  EXPECT_TRUE(engine_.FindWorker("default", "w")->reserved_for.empty());
}

TEST_F(PlacementTest, BinpackAndSpreadChooseAmongWaitingWorkers) {
  for (PlacementPolicy policy : {PlacementPolicy::kBinpack, PlacementPolicy::kSpread}) {
    Engine engine(Options());
    EngineOutput out;
    for (const char* id : {"busy", "idle"}) {
      WorkerSpec w;
      w.id = id;
      w.capacity = {{"cpu", 4000}};
      engine.RegisterWorker(std::move(w), now_, &out);
    }
    ASSERT_TRUE(engine.PatchQueue("default", "q", [&](QueueSettings* s) {
      s->placement = policy;
      return Status::Ok();
    }, &out).ok());
    std::vector<TaskSpec> first{Spec({{"cpu", 2000}})};
    ASSERT_OK(engine.Submit(std::move(first), now_, &out));
    ASSERT_EQ(engine.Lease(LeaseRequest{"default", "busy", {"q"}, 1, kLease}, now_, &out)->size(),
              1u);
    // Both wait; the idle one asked first.
    engine.AddWaiter(1, LeaseRequest{"default", "idle", {"q"}, 1, kLease});
    engine.AddWaiter(2, LeaseRequest{"default", "busy", {"q"}, 1, kLease});
    std::vector<TaskSpec> next{Spec({{"cpu", 1000}})};
    ASSERT_OK(engine.Submit(std::move(next), now_, &out));
    auto served = engine.ServeWaiters(now_, &out);
    ASSERT_EQ(served.size(), 1u);
    EXPECT_EQ(served[0].second[0].task.worker,
              policy == PlacementPolicy::kBinpack ? "busy" : "idle")
        << PlacementPolicyName(policy);
  }
}

TEST_F(PlacementTest, PreferencesOutweighThePolicy) {
  Register("a", {{"cpu", 4000}}, {{"zone", "a"}});
  Register("b", {{"cpu", 4000}}, {{"zone", "b"}});
  engine_.AddWaiter(1, LeaseRequest{"default", "a", {"q"}, 1, kLease});
  engine_.AddWaiter(2, LeaseRequest{"default", "b", {"q"}, 1, kLease});
  TaskSpec s = Spec({{"cpu", 1000}});
  s.placement.prefer = {LabelPreference{Sel("zone", SelectorOp::kEquals, {"b"}), 10}};
  Submit(std::move(s));
  EngineOutput out;
  auto served = engine_.ServeWaiters(now_, &out);
  ASSERT_EQ(served.size(), 1u);
  EXPECT_EQ(served[0].first, 2u);
  // With only the less preferred worker asking, it runs there: soft.
  TaskSpec s2 = Spec({{"cpu", 1000}});
  s2.placement.prefer = {LabelPreference{Sel("zone", SelectorOp::kEquals, {"b"}), 10}};
  Submit(std::move(s2));
  served = engine_.ServeWaiters(now_, &out);
  ASSERT_EQ(served.size(), 1u);
  EXPECT_EQ(served[0].first, 1u);
}

TEST_F(PlacementTest, BroadcastMakesOneCopyPerMatchingWorkerWithItsShard) {
  Register("w1", {{"cpu", 4000}}, {{"role", "cache"}});
  Register("w2", {{"cpu", 4000}}, {{"role", "cache"}});
  Register("w3", {{"cpu", 4000}}, {{"role", "db"}});
  TaskSpec s = Spec({{"cpu", 100}}, {Sel("role", SelectorOp::kEquals, {"cache"})});
  s.key = "flush-1";
  EngineOutput out;
  auto copies = engine_.SubmitBroadcast(TaskSpec(s), now_, &out);
  ASSERT_OK(copies);
  ASSERT_EQ(copies->size(), 2u);
  EXPECT_EQ((*copies)[0].worker, "w1");
  EXPECT_EQ((*copies)[1].worker, "w2");
  EXPECT_EQ(Get((*copies)[1].id).placement.shard_index, 1);
  EXPECT_EQ(Get((*copies)[1].id).placement.shard_total, 2);
  // The same key again: the same copies, nothing new.
  auto again = engine_.SubmitBroadcast(TaskSpec(s), now_, &out);
  ASSERT_OK(again);
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].id, (*copies)[0].id);
  EXPECT_FALSE((*again)[0].created);
  EXPECT_EQ(engine_.live_tasks(), 2u);
  // Each copy runs only on its worker while that worker lives.
  EXPECT_TRUE(Lease("w3", 5).empty());
  auto on_w2 = Lease("w2", 5);
  ASSERT_EQ(on_w2.size(), 1u);
  EXPECT_EQ(on_w2[0].task.id, (*copies)[1].id);
  ASSERT_OK(engine_.DeregisterWorker("default", "w1", now_, &out));
  EXPECT_EQ(Get((*copies)[0].id).wait_reason, "worker");  // w2 could run it, and has room
  Complete(on_w2[0]);
  auto moved = Lease("w2", 5);  // w1 is gone: its shard may run elsewhere
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].task.id, (*copies)[0].id);
  EXPECT_EQ(moved[0].task.placement.shard_index, 0);
  // No worker that matches: refused, nothing made.
  TaskSpec none = Spec({}, {Sel("role", SelectorOp::kEquals, {"gpu"})});
  auto refused = engine_.SubmitBroadcast(std::move(none), now_, &out);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(PlacementTest, TasksWithOneAffinityKeyGoToOneWorkerWhileItLives) {
  Register("w1", {{"cpu", 4000}});
  Register("w2", {{"cpu", 4000}});
  auto keyed = [&] {
    TaskSpec s = Spec({{"cpu", 1000}});
    s.placement.affinity_key = "user-42";
    return Submit(std::move(s));
  };
  keyed();
  auto first = Lease("w1");
  ASSERT_EQ(first.size(), 1u);
  keyed();
  EXPECT_TRUE(Lease("w2").empty()) << "a task of user-42 went to another worker";
  auto second = Lease("w1");
  ASSERT_EQ(second.size(), 1u);
  // Bound even while none runs.
  Complete(first[0]);
  Complete(second[0]);
  const std::string third = keyed();
  EXPECT_TRUE(Lease("w2").empty());
  // w1 leaves: the key binds to whoever takes it next.
  EngineOutput out;
  ASSERT_OK(engine_.DeregisterWorker("default", "w1", now_, &out));
  auto moved = Lease("w2");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].task.id, third);
  keyed();
  Register("w1", {{"cpu", 4000}});
  EXPECT_TRUE(Lease("w1").empty());
  EXPECT_EQ(Lease("w2").size(), 1u);
}

TEST_F(PlacementTest, ATaskBoundToAWorkerIsNotDeferredToABetterOne) {
  Register("busy", {{"cpu", 4000}});
  Register("idle", {{"cpu", 4000}});
  auto keyed = [&] {
    TaskSpec s = Spec({{"cpu", 1000}});
    s.placement.affinity_key = "user-7";
    return Submit(std::move(s));
  };
  keyed();
  auto first = Lease("idle");
  ASSERT_EQ(first.size(), 1u);
  Complete(first[0]);  // user-7 stays bound to idle
  Submit(Spec({{"cpu", 2000}}));
  ASSERT_EQ(Lease("busy").size(), 1u);
  // Both wait; binpack would rather give work to busy, but the key says idle.
  engine_.AddWaiter(1, LeaseRequest{"default", "idle", {"q"}, 1, kLease});
  engine_.AddWaiter(2, LeaseRequest{"default", "busy", {"q"}, 1, kLease});
  const std::string id = keyed();
  EngineOutput out;
  auto served = engine_.ServeWaiters(now_, &out);
  ASSERT_EQ(served.size(), 1u);
  EXPECT_EQ(served[0].first, 1u);
  EXPECT_EQ(served[0].second[0].task.id, id);
}

TEST_F(PlacementTest, GpuTasksGetDistinctDevices) {
  Register("g", {{"gpu", 2}}, {}, {"0", "1"});
  for (int i = 0; i < 3; ++i) Submit(Spec({{"gpu", 1}}));
  auto got = Lease("g", 3);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].gpu_devices, std::vector<std::string>{"0"});
  EXPECT_EQ(got[1].gpu_devices, std::vector<std::string>{"1"});
  Complete(got[0]);
  auto next = Lease("g");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].gpu_devices, std::vector<std::string>{"0"});
  EXPECT_EQ(engine_.FindWorker("default", "g")->gpu_devices_in_use,
            (std::vector<std::string>{"0", "1"}));
}

// Random workers join, leave and die; random tasks with random requests are
// submitted, leased, completed, failed, cancelled and left to expire. After
// every step: no worker holds more than it has, what each holds is exactly
// the sum of its running tasks' requests, each running task is held by the
// worker that leased it, and devices are not shared. At the end, with the
// churn stopped, every task some live worker could run has run.
class PlacementPropertyTest : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(PlacementPropertyTest, NeverOverCommitsConservesCapacityAndRunsWhatFits) {
  EngineOptions o;
  o.seed = GetParam();
  o.worker_grace_ms = kGrace;
  Engine engine(o);
  std::mt19937_64 rng(GetParam());
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  TimeMs now = kT0;
  std::map<std::string, WorkerSpec> alive;  // heartbeating
  std::set<std::string> silent;             // left to die
  std::vector<std::string> tasks;
  std::map<std::string, LeasedTask> leases;  // task id -> its current lease, as we know it
  int next_worker = 0;

  auto check = [&] {
    std::map<std::string, std::string> holder;
    for (const WorkerInfo& w : engine.Workers("default")) {
      std::map<std::string, std::int64_t> sum;
      std::int64_t gpus = 0;
      for (const std::string& id : w.running) {
        auto t = engine.Find("default", id);
        ASSERT_TRUE(t.has_value()) << id;
        ASSERT_EQ(t->state, TaskState::kRunning);
        ASSERT_EQ(t->worker, w.spec.id);
        ASSERT_TRUE(holder.emplace(id, w.spec.id).second) << id << " held twice";
        for (const auto& [r, n] : t->placement.resources) sum[r] += n;
        gpus += t->placement.resources.count("gpu") ? t->placement.resources.at("gpu") : 0;
      }
      ASSERT_EQ(w.in_use, sum) << "worker " << w.spec.id << ": capacity not conserved";
      for (const auto& [r, n] : w.in_use) {
        const std::int64_t cap = w.spec.capacity.count(r) ? w.spec.capacity.at(r) : 0;
        ASSERT_LE(n, cap) << "worker " << w.spec.id << " over-committed on " << r;
      }
      ASSERT_EQ(static_cast<std::int64_t>(w.gpu_devices_in_use.size()),
                std::min<std::int64_t>(gpus, static_cast<std::int64_t>(w.spec.gpu_devices.size())));
    }
  };
  auto random_task = [&] {
    TaskSpec s;
    s.type = "t";
    s.queue = chance(0.5) ? "q" : "r";
    s.backoff = Backoff{0, 0, 1.0, 0.0};
    s.max_attempts = 1000;
    if (chance(0.8)) s.placement.resources["cpu"] = 500 * static_cast<std::int64_t>(1 + pick(12));
    if (chance(0.5)) s.placement.resources["memory_mb"] = 512 * static_cast<std::int64_t>(1 + pick(16));
    if (chance(0.15)) s.placement.resources["gpu"] = static_cast<std::int64_t>(1 + pick(2));
    if (chance(0.3)) s.placement.require.push_back(Sel("zone", SelectorOp::kEquals, {chance(0.5) ? "a" : "b"}));
    if (chance(0.1)) s.placement.require.push_back(Sel("zone", SelectorOp::kEquals, {"nowhere"}));
    if (chance(0.2)) s.placement.affinity_key = "k" + std::to_string(pick(5));
    if (chance(0.2)) s.placement.prefer.push_back({Sel("zone", SelectorOp::kEquals, {"a"}), 3});
    if (chance(0.3)) s.timeout_ms = 1000 * static_cast<std::int64_t>(1 + pick(30));
    return s;
  };
  auto add_worker = [&] {
    WorkerSpec w;
    w.id = "w" + std::to_string(next_worker++);
    w.capacity["cpu"] = 1000 * static_cast<std::int64_t>(1 + pick(8));
    w.capacity["memory_mb"] = 1024 * static_cast<std::int64_t>(1 + pick(8));
    if (chance(0.3)) {
      w.capacity["gpu"] = 2;
      w.gpu_devices = {"0", "1"};
    }
    w.labels["zone"] = chance(0.5) ? "a" : "b";
    EngineOutput out;
    engine.RegisterWorker(WorkerSpec(w), now, &out);
    alive[w.id] = w;
  };
  auto lease_by = [&](const std::string& worker) {
    EngineOutput out;
    auto r = engine.Lease(LeaseRequest{"default", worker, {"q", "r"}, 1 + pick(3),
                                       chance(0.2) ? 2000 : kLease},
                          now, &out);
    ASSERT_OK(r);
    for (LeasedTask& lt : *r) leases[lt.task.id] = lt;
  };
  // Every live worker asks at once in a long poll, as real workers do: the
  // placement policy and preferences choose among them.
  std::uint64_t next_waiter = 1;
  auto all_wait = [&] {
    std::vector<std::uint64_t> added;
    for (const auto& [id, spec] : alive) {
      added.push_back(next_waiter);
      engine.AddWaiter(next_waiter++, LeaseRequest{"default", id, {"q", "r"}, 1 + pick(3), kLease});
    }
    EngineOutput out;
    for (auto& [waiter, got] : engine.ServeWaiters(now, &out)) {
      for (LeasedTask& lt : got) leases[lt.task.id] = lt;
    }
    for (std::uint64_t w : added) engine.RemoveWaiter(w);
  };
  auto end_one = [&](bool succeed) {
    if (leases.empty()) return;
    auto it = std::next(leases.begin(), static_cast<std::ptrdiff_t>(pick(leases.size())));
    EngineOutput out;
    if (succeed) {
      (void)engine.Complete("default", it->first, it->second.lease.token, "1", now, &out);
    } else {
      (void)engine.Fail("default", it->first, it->second.lease.token, "x", true, "", now, &out);
    }
    leases.erase(it);
  };

  for (int i = 0; i < 3; ++i) add_worker();
  for (int step = 0; step < 4000; ++step) {
    const std::size_t action = pick(100);
    if (action < 5) {
      add_worker();
    } else if (action < 7 && alive.size() > 1) {
      auto it = std::next(alive.begin(), static_cast<std::ptrdiff_t>(pick(alive.size())));
      EngineOutput out;
      ASSERT_OK(engine.DeregisterWorker("default", it->first, now, &out));
      alive.erase(it);
    } else if (action < 9 && alive.size() > 1) {
      auto it = std::next(alive.begin(), static_cast<std::ptrdiff_t>(pick(alive.size())));
      silent.insert(it->first);
      alive.erase(it);
    } else if (action < 35) {
      EngineOutput out;
      std::vector<TaskSpec> specs{random_task()};
      auto r = engine.Submit(std::move(specs), now, &out);
      ASSERT_OK(r);
      tasks.push_back((*r)[0].id);
    } else if (action < 60 && !alive.empty()) {
      auto it = std::next(alive.begin(), static_cast<std::ptrdiff_t>(pick(alive.size())));
      lease_by(it->first);
    } else if (action < 65) {
      all_wait();
    } else if (action < 85) {
      end_one(true);
    } else if (action < 90) {
      end_one(false);
    } else if (action < 93 && !tasks.empty()) {
      EngineOutput out;
      (void)engine.Cancel("default", tasks[pick(tasks.size())], now, &out);
    } else {
      now += 700;
      EngineOutput out;
      for (const auto& [id, spec] : alive) (void)engine.WorkerHeartbeat("default", id, now, &out);
      engine.Tick(now, &out);
    }
    check();
    if (HasFatalFailure()) return;
  }

  // Churn stops: the live workers keep asking and finishing until nothing
  // moves; every task one of them could run has then run. The silent
  // workers are dead by then.
  for (TimeMs end = now + kGrace; now < end;) {
    now += 700;
    EngineOutput out;
    for (const auto& [id, spec] : alive) (void)engine.WorkerHeartbeat("default", id, now, &out);
    engine.Tick(now, &out);
    check();
  }
  for (int round = 0; round < 10'000; ++round) {
    now += 10;
    EngineOutput out;
    for (const auto& [id, spec] : alive) (void)engine.WorkerHeartbeat("default", id, now, &out);
    engine.Tick(now, &out);
    std::size_t before = leases.size();
    // Half the seeds drain through long polls only: a task every waiting
    // worker passes over to another would never run.
    if (GetParam() % 2 == 0) {
      all_wait();
    } else {
      for (const auto& [id, spec] : alive) lease_by(id);
    }
    check();
    if (HasFatalFailure()) return;
    if (leases.empty() && before == 0) break;
    while (!leases.empty()) end_one(true);
  }
  {
    std::set<std::string> engine_alive, test_alive;
    for (const WorkerInfo& w : engine.Workers("default")) engine_alive.insert(w.spec.id);
    for (const auto& [id, w] : alive) test_alive.insert(id);
    ASSERT_EQ(engine_alive, test_alive);
  }
  for (const std::string& id : tasks) {
    auto t = engine.Find("default", id);
    if (!t) continue;  // finished
    ASSERT_NE(t->state, TaskState::kRunning);
    bool fits_someone = false;
    for (const auto& [wid, w] : alive) {
      if (!t->placement.worker.empty() && alive.count(t->placement.worker) && wid != t->placement.worker) continue;
      bool labels = true;
      for (const LabelSelector& s : t->placement.require) labels = labels && s.Matches(w.labels);
      bool room = true;
      for (const auto& [r, n] : t->placement.resources) {
        room = room && (w.capacity.count(r) ? w.capacity.at(r) : 0) >= n;
      }
      fits_someone = fits_someone || (labels && room);
    }
    if (t->state == TaskState::kReady) {
      EXPECT_FALSE(fits_someone) << id << " fits a live worker but never ran: " << t->wait_reason
                                 << " " << t->wait_detail;
      EXPECT_EQ(t->wait_reason, "unschedulable") << id << " " << t->wait_detail;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, PlacementPropertyTest, ::testing::Values(1, 2, 3, 4, 5, 6, 7, 8));

}  // namespace
}  // namespace dray
