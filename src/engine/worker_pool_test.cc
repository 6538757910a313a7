// The worker pool on its own, without an engine: the pure decisions (admit,
// fit, score, why unschedulable), what a running task holds and gives back
// (resources, GPU devices), reservations and the backfill shadow time,
// affinity binding, parking, the pass to a better waiting worker, and the
// reaping of workers silent past the grace. Tasks are built in a LiveTable
// and moved the way the engine moves them (PushReady, EraseReady,
// TrackRunning).
#include "engine/worker_pool.h"

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr std::int64_t kGrace = 5'000;

using Amounts = std::map<std::string, std::int64_t>;
using Labels = std::map<std::string, std::string>;

LabelSelector Sel(std::string key, SelectorOp op, std::vector<std::string> values = {}) {
  return LabelSelector{std::move(key), op, std::move(values)};
}

Placement Needs(Amounts resources, std::vector<LabelSelector> require = {}) {
  Placement p;
  p.resources = std::move(resources);
  p.require = std::move(require);
  return p;
}

// A worker record as the pool keeps it, for the pure decisions.
WorkerPool::Worker Record(Amounts capacity, Labels labels = {}, Amounts used = {}) {
  WorkerPool::Worker w;
  w.info.spec.id = "w";
  w.info.spec.capacity = std::move(capacity);
  w.info.spec.labels = std::move(labels);
  w.used = std::move(used);
  return w;
}

// ---------------------------------------------------------------- pure decisions

TEST(WorkerPoolDecisionTest, AdmitsNeedsEverySelectorAndTheWholeCapacity) {
  const WorkerPool::Worker w = Record({{"cpu", 4000}, {"gpu", 1}}, {{"zone", "a"}, {"arch", "x"}},
                                      {{"cpu", 4000}});
  EXPECT_TRUE(WorkerPool::Admits(w, Placement{}));
  EXPECT_TRUE(WorkerPool::Admits(w, Needs({}, {Sel("zone", SelectorOp::kEquals, {"a"})})));
  EXPECT_FALSE(WorkerPool::Admits(w, Needs({}, {Sel("zone", SelectorOp::kEquals, {"b"})})));
  EXPECT_FALSE(WorkerPool::Admits(w, Needs({}, {Sel("zone", SelectorOp::kEquals, {"a"}),
                                                Sel("arch", SelectorOp::kIn, {"y", "z"})})));
  EXPECT_TRUE(WorkerPool::Admits(w, Needs({}, {Sel("ssd", SelectorOp::kNotIn, {"1"})})));
  EXPECT_FALSE(WorkerPool::Admits(w, Needs({}, {Sel("ssd", SelectorOp::kExists)})));
  // The whole capacity counts, not what is free: it is all in use here.
  EXPECT_TRUE(WorkerPool::Admits(w, Needs({{"cpu", 4000}, {"gpu", 1}})));
  EXPECT_FALSE(WorkerPool::Admits(w, Needs({{"cpu", 4001}})));
  EXPECT_FALSE(WorkerPool::Admits(w, Needs({{"licenses", 1}})));  // one it does not have
}

TEST(WorkerPoolDecisionTest, FitsFreeCountsWhatIsHeldAndWhatAReservationKeeps) {
  const WorkerPool::Worker w = Record({{"cpu", 4000}, {"memory_mb", 8192}}, {},
                                      {{"cpu", 3000}});
  EXPECT_TRUE(WorkerPool::FitsFree(w, Needs({{"cpu", 1000}}), nullptr));
  EXPECT_FALSE(WorkerPool::FitsFree(w, Needs({{"cpu", 1001}}), nullptr));
  EXPECT_TRUE(WorkerPool::FitsFree(w, Needs({{"memory_mb", 8192}}), nullptr));
  const Placement keep_cpu = Needs({{"cpu", 500}});
  const Placement keep_memory = Needs({{"memory_mb", 8192}});
  EXPECT_FALSE(WorkerPool::FitsFree(w, Needs({{"cpu", 1000}}), &keep_cpu));
  EXPECT_TRUE(WorkerPool::FitsFree(w, Needs({{"cpu", 500}}), &keep_cpu));
  EXPECT_TRUE(WorkerPool::FitsFree(w, Needs({{"cpu", 1000}}), &keep_memory));
  EXPECT_FALSE(WorkerPool::FitsFree(w, Needs({{"memory_mb", 1}}), &keep_memory));
}

TEST(WorkerPoolDecisionTest, ScorePutsPreferencesFirstThenBinpackOrSpread) {
  const Amounts cap = {{"cpu", 4000}, {"memory_mb", 4000}};
  const WorkerPool::Worker quarter = Record(cap, {{"zone", "a"}}, {{"cpu", 2000}});
  const WorkerPool::Worker full = Record(cap, {{"zone", "b"}}, {{"cpu", 4000}, {"memory_mb", 4000}});
  const Placement plain = Needs({{"cpu", 500}});
  EXPECT_GT(WorkerPool::Score(full, plain, PlacementPolicy::kBinpack),
            WorkerPool::Score(quarter, plain, PlacementPolicy::kBinpack));
  EXPECT_GT(WorkerPool::Score(quarter, plain, PlacementPolicy::kSpread),
            WorkerPool::Score(full, plain, PlacementPolicy::kSpread));
  // A preference of weight 1 outranks any difference in fill.
  Placement prefers_a = plain;
  prefers_a.prefer.push_back({Sel("zone", SelectorOp::kEquals, {"a"}), 1});
  EXPECT_GT(WorkerPool::Score(quarter, prefers_a, PlacementPolicy::kBinpack),
            WorkerPool::Score(full, prefers_a, PlacementPolicy::kBinpack));
  // A worker with no resources is as full as the tasks it holds, below any share.
  WorkerPool::Worker bare = Record({});
  bare.running["t1"];
  WorkerPool::Worker idle = Record({});
  EXPECT_GT(WorkerPool::Score(bare, plain, PlacementPolicy::kBinpack),
            WorkerPool::Score(idle, plain, PlacementPolicy::kBinpack));
  EXPECT_LT(WorkerPool::Score(bare, plain, PlacementPolicy::kBinpack), 0.001);
}

// ---------------------------------------------------------------- the pool

class WorkerPoolTest : public ::testing::Test {
 protected:
  WorkerPoolTest() : pool_(table_, kGrace) {
    queue_.ns = "default";
    queue_.name = "q";
  }

  // Registers (or replaces) a worker and offers it the parked tasks, as the
  // engine does.
  WorkerPool::Worker& Register(const std::string& id, Amounts capacity, Labels labels = {},
                               std::vector<std::string> gpus = {},
                               std::vector<std::string> queues = {}) {
    WorkerSpec s;
    s.id = id;
    s.capacity = std::move(capacity);
    s.labels = std::move(labels);
    s.gpu_devices = std::move(gpus);
    s.queues = std::move(queues);
    WorkerPool::Worker& w = pool_.Register(std::move(s), now_);
    pool_.Unpark(w, &queue_);
    return w;
  }

  // A new ready task of queue "q", in its ready set.
  Live* Add(Placement p, std::int64_t timeout_ms = 0, std::int32_t priority = 0) {
    Task t;
    t.id = ids_.Next(now_);
    t.ns = queue_.ns;
    t.queue = queue_.name;
    t.type = "t";
    t.state = TaskState::kReady;
    t.run_at = t.created_at = t.updated_at = now_;
    t.seq = ++seq_;
    t.priority = priority;
    t.timeout_ms = timeout_ms;
    t.placement = std::move(p);
    LivePtr owned = table_.Compact(t, &queue_);
    Live* l = owned.get();
    table_.Insert(std::move(owned));
    pool_.PushReady(&queue_, l);
    return l;
  }

  // As a lease's step does: out of the ready sets, running on `worker`
  // since now, and held by it (if it is registered).
  void Start(Live* l, const std::string& worker) {
    pool_.EraseReady(&queue_, l);
    Task t = LiveTable::Expand(l);
    t.state = TaskState::kRunning;
    t.worker = worker;
    t.lease_token = ++seq_;
    t.attempts++;
    t.history.push_back(Attempt{t.attempts, worker, now_, 0, AttemptOutcome::kRunning, ""});
    LiveTable::Absorb(l, t);
    pool_.TrackRunning(l, queue_.ns, "", worker, Id(l));
  }

  // The attempt ended and the task left: its worker gives back what it held.
  void End(Live* l) {
    pool_.TrackRunning(l, queue_.ns, l->run->worker, "", Id(l));
    table_.Remove(l);  // the returned pointer frees it
  }

  Live* Pick(const std::string& worker) {
    return pool_.PickFor(&queue_, pool_.Find("default", worker), waiters_, now_, &made_ready_);
  }

  static std::string Id(const Live* l) { return FormatId(l->id); }

  TimeMs now_ = kT0;
  IdGenerator ids_;
  std::uint64_t seq_ = 0;
  QueueState queue_;
  LiveTable table_;
  WorkerPool pool_;
  WorkerPool::Waiters waiters_;
  bool made_ready_ = false;
};

TEST_F(WorkerPoolTest, HoldTakesResourcesAndDistinctGpuDevicesAndUnholdGivesThemBack) {
  WorkerPool::Worker& g = Register("g", {{"cpu", 8000}, {"gpu", 3}}, {}, {"0", "1", "2"});
  Live* two = Add(Needs({{"cpu", 1000}, {"gpu", 2}}));
  Live* one = Add(Needs({{"cpu", 500}, {"gpu", 1}}));
  Start(two, "g");
  Start(one, "g");
  EXPECT_EQ(g.running.at(Id(two)).gpus, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(g.running.at(Id(one)).gpus, (std::vector<std::string>{"2"}));
  WorkerInfo view = WorkerPool::View(g);
  EXPECT_EQ(view.in_use, (Amounts{{"cpu", 1500}, {"gpu", 3}}));
  EXPECT_EQ(view.gpu_devices_in_use, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(view.running.size(), 2u);

  // Holding a task twice (a heartbeat adopting what is already held) changes nothing.
  pool_.Hold(&g, one, Id(one));
  EXPECT_EQ(g.used, (Amounts{{"cpu", 1500}, {"gpu", 3}}));

  End(two);
  EXPECT_EQ(g.used, (Amounts{{"cpu", 500}, {"gpu", 1}}));
  EXPECT_EQ(g.gpus_in_use, (std::set<std::string>{"2"}));
  Live* next = Add(Needs({{"gpu", 2}}));
  Start(next, "g");
  EXPECT_EQ(g.running.at(Id(next)).gpus, (std::vector<std::string>{"0", "1"}));
  End(next);
  End(one);
  EXPECT_TRUE(g.used.empty()) << "an amount back to zero leaves no entry";
  EXPECT_TRUE(g.gpus_in_use.empty());
  EXPECT_TRUE(g.running.empty());
}

TEST_F(WorkerPoolTest, AHeartbeatAdoptsATaskLeasedBeforeItsWorkerRegistered) {
  Live* l = Add(Needs({{"cpu", 1000}}));
  Start(l, "late");  // not registered: nothing holds it
  WorkerPool::Worker& late = Register("late", {{"cpu", 4000}});
  EXPECT_TRUE(late.running.empty());
  now_ += 1000;
  pool_.SawHolder("default", Id(l), now_);
  EXPECT_EQ(late.used, (Amounts{{"cpu", 1000}}));
  EXPECT_EQ(late.info.last_seen, now_);
  EXPECT_EQ(pool_.NextDeadline(), now_ + kGrace);
  // A task of another namespace, or one that is not running: nothing.
  pool_.SawHolder("elsewhere", Id(l), now_ + 1);
  EXPECT_EQ(late.info.last_seen, now_);
}

TEST_F(WorkerPoolTest, PlacedTasksWaitBesideTheHeapAndAPlainTaskAheadComesFirst) {
  Register("w", {{"cpu", 4000}});
  Live* placed = Add(Needs({{"cpu", 1000}}), 0, /*priority=*/1);
  Live* plain = Add(Placement{}, 0, /*priority=*/0);
  EXPECT_EQ(placed->heap_pos, WorkerPool::kPlaced);
  EXPECT_NE(plain->heap_pos, WorkerPool::kPlaced);
  EXPECT_EQ(queue_.ready.size(), 1u);
  EXPECT_EQ(pool_.placed_ready(), 1u);
  EXPECT_TRUE(WorkerPool::HasReady(queue_));

  EXPECT_EQ(Pick("w"), plain);  // priority 0 runs before 1
  pool_.EraseReady(&queue_, plain);
  EXPECT_EQ(Pick("w"), placed);
  pool_.EraseReady(&queue_, placed);
  EXPECT_EQ(pool_.placed_ready(), 0u);
  EXPECT_FALSE(WorkerPool::HasReady(queue_));
}

TEST_F(WorkerPoolTest, AnUnregisteredWorkerTakesOnlyTasksThatNeedNoRegistration) {
  Placement prefers;
  prefers.prefer.push_back({Sel("zone", SelectorOp::kEquals, {"a"}), 5});
  Live* sized = Add(Needs({{"cpu", 1000}}));
  Live* soft = Add(prefers);
  EXPECT_EQ(Pick("anonymous"), soft);
  pool_.EraseReady(&queue_, soft);
  EXPECT_EQ(Pick("anonymous"), nullptr);
  EXPECT_EQ(sized->heap_pos, WorkerPool::kParked) << "no live worker could run it";
}

TEST_F(WorkerPoolTest, ATaskNoLiveWorkerCouldRunIsParkedUntilOneThatCouldRegisters) {
  Register("a", {{"cpu", 4000}}, {{"zone", "a"}});
  Live* zoned = Add(Needs({{"cpu", 1000}}, {Sel("zone", SelectorOp::kEquals, {"b"})}));
  EXPECT_EQ(Pick("a"), nullptr);
  EXPECT_EQ(zoned->heap_pos, WorkerPool::kParked);
  EXPECT_EQ(pool_.placed_ready(), 0u);
  EXPECT_EQ(queue_.parked.size(), 1u);
  EXPECT_EQ(pool_.UnschedulableReason("default", "q", *WorkerPool::PlacementOf(zoned)),
            "no live worker has labels matching zone=b");

  // A worker that cannot run it changes nothing; one that can brings it back.
  const std::uint64_t epoch = pool_.epoch();
  Register("c", {{"cpu", 4000}}, {{"zone", "c"}});
  EXPECT_NE(pool_.epoch(), epoch);
  EXPECT_EQ(zoned->heap_pos, WorkerPool::kParked);
  Register("b", {{"cpu", 4000}}, {{"zone", "b"}});
  EXPECT_EQ(zoned->heap_pos, WorkerPool::kPlaced);
  EXPECT_EQ(pool_.placed_ready(), 1u);
  EXPECT_EQ(Pick("a"), nullptr);
  EXPECT_EQ(Pick("b"), zoned);
}

TEST_F(WorkerPoolTest, AFullWorkerIsReservedForALargeTaskAndOnlyATaskThatEndsInTimeBackfills) {
  WorkerPool::Worker& w = Register("w", {{"cpu", 4000}});
  std::vector<Live*> small;
  for (int i = 0; i < 3; ++i) {
    small.push_back(Add(Needs({{"cpu", 1000}}), /*timeout_ms=*/60'000));
    Start(small.back(), "w");
  }
  Live* large = Add(Needs({{"cpu", 4000}}));
  Live* endless = Add(Needs({{"cpu", 1000}}));                 // no timeout
  Live* too_long = Add(Needs({{"cpu", 1000}}), 120'000);       // outlasts the running ones
  Live* in_time = Add(Needs({{"cpu", 1000}}), 2'000);
  EXPECT_FALSE(pool_.AnyHasRoom("default", "q", *WorkerPool::PlacementOf(large)));

  EXPECT_EQ(Pick("w"), in_time);
  EXPECT_EQ(w.reserved_for, Id(large));
  EXPECT_EQ(pool_.ReservedFor(Id(large)), &w);
  EXPECT_EQ(pool_.ShadowTime(w, *WorkerPool::PlacementOf(large), now_), now_ + 60'000);
  Start(in_time, "w");

  // As the running tasks end, their room is kept for the large one.
  for (Live* l : small) End(l);
  EXPECT_EQ(Pick("w"), nullptr);
  EXPECT_EQ(w.reserved_for, Id(large)) << "the reservation stands while its task waits";
  End(in_time);
  EXPECT_EQ(Pick("w"), large);
  Start(large, "w");
  EXPECT_EQ(w.reserved_for, "") << "a task that starts drops its reservation";
  EXPECT_EQ(pool_.ReservedFor(Id(large)), nullptr);
  EXPECT_EQ(endless->heap_pos, WorkerPool::kPlaced);
  EXPECT_EQ(too_long->heap_pos, WorkerPool::kPlaced);
}

TEST_F(WorkerPoolTest, AReservationFallsWhenItsTaskStartsElsewhereOrItsWorkerLeaves) {
  WorkerPool::Worker& a = Register("a", {{"cpu", 2000}});
  Live* busy = Add(Needs({{"cpu", 1000}}));
  Start(busy, "a");
  Live* large = Add(Needs({{"cpu", 2000}}));
  EXPECT_EQ(Pick("a"), nullptr);
  EXPECT_EQ(a.reserved_for, Id(large));
  Register("b", {{"cpu", 2000}});
  EXPECT_EQ(Pick("b"), large);
  Start(large, "b");
  EXPECT_EQ(a.reserved_for, "");

  Live* larger = Add(Needs({{"cpu", 2000}}));
  EXPECT_EQ(Pick("a"), nullptr);
  EXPECT_EQ(pool_.ReservedFor(Id(larger)), &a);
  std::unique_ptr<WorkerPool::Worker> gone = pool_.Deregister("default", "a");
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(pool_.ReservedFor(Id(larger)), nullptr);
  EXPECT_EQ(gone->running.count(Id(busy)), 1u) << "the caller releases what it held";
  EXPECT_EQ(pool_.Find("default", "a"), nullptr);
  EXPECT_EQ(pool_.Deregister("default", "a"), nullptr);
}

TEST_F(WorkerPoolTest, ShadowTimeIsWhenEnoughRunningTasksMustHaveEndedByTheirTimeouts) {
  WorkerPool::Worker& w = Register("w", {{"cpu", 4000}, {"memory_mb", 4096}});
  Live* ten = Add(Needs({{"cpu", 1000}}), 10'000);
  Live* thirty = Add(Needs({{"cpu", 1000}, {"memory_mb", 1024}}), 30'000);
  Start(thirty, "w");
  now_ += 5'000;
  Start(ten, "w");  // started later, ends first: at kT0 + 15 s
  Live* forever = Add(Needs({{"cpu", 1000}}));
  Start(forever, "w");
  now_ += 1'000;
  EXPECT_EQ(pool_.ShadowTime(w, Needs({{"cpu", 1000}}), now_), now_);
  EXPECT_EQ(pool_.ShadowTime(w, Needs({{"cpu", 2000}}), now_), kT0 + 15'000);
  EXPECT_EQ(pool_.ShadowTime(w, Needs({{"cpu", 3000}}), now_), kT0 + 30'000);
  EXPECT_EQ(pool_.ShadowTime(w, Needs({{"memory_mb", 4096}}), now_), kT0 + 30'000);
  EXPECT_EQ(pool_.ShadowTime(w, Needs({{"cpu", 4000}}), now_), WorkerPool::kNever)
      << "a task without a timeout may never give its room back";
}

TEST_F(WorkerPoolTest, AnAffinityKeyBindsToTheWorkerThatStartedOneUntilItDies) {
  Register("a", {{"cpu", 4000}});
  WorkerPool::Worker& b = Register("b", {{"cpu", 4000}});
  Placement keyed = Needs({{"cpu", 1000}});
  keyed.affinity_key = "user-42";
  Live* first = Add(keyed);
  Start(first, "b");
  EXPECT_EQ(b.affinity_keys, (std::set<std::string>{"user-42"}));

  Live* second = Add(keyed);
  EXPECT_EQ(Pick("a"), nullptr) << "bound to b while b lives";
  EXPECT_EQ(Pick("b"), second);

  // b falls silent; a keeps heartbeating. Once b is dead the key is free.
  now_ += kGrace;
  pool_.Saw(pool_.Find("default", "a"), now_);
  std::unique_ptr<WorkerPool::Worker> dead = pool_.TakeDead(now_);
  ASSERT_NE(dead, nullptr);
  EXPECT_EQ(dead->info.spec.id, "b");
  // The binding died with it: b coming back under the same name does not
  // inherit it.
  Register("b", {{"cpu", 4000}});
  EXPECT_EQ(Pick("a"), second);
  Start(second, "a");
  EXPECT_EQ(pool_.Find("default", "a")->affinity_keys, (std::set<std::string>{"user-42"}));
}

TEST_F(WorkerPoolTest, AWorkerSilentPastTheGraceIsTakenDeadWithWhatItHeld) {
  Register("a", {{"cpu", 4000}});
  now_ += 3'000;
  Register("b", {{"cpu", 4000}});
  EXPECT_EQ(pool_.NextDeadline(), kT0 + kGrace);
  Live* held = Add(Needs({{"cpu", 1000}}));
  Start(held, "a");
  pool_.Saw(pool_.Find("default", "a"), kT0 + 4'000);  // a sign of life moves its deadline
  EXPECT_EQ(pool_.NextDeadline(), kT0 + 3'000 + kGrace);
  pool_.Saw(pool_.Find("default", "a"), kT0 + 1'000);  // an older one does not
  EXPECT_EQ(pool_.Find("default", "a")->info.last_seen, kT0 + 4'000);

  EXPECT_EQ(pool_.TakeDead(kT0 + 3'000 + kGrace - 1), nullptr);
  const std::uint64_t epoch = pool_.epoch();
  std::unique_ptr<WorkerPool::Worker> b = pool_.TakeDead(kT0 + 4'000 + kGrace);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->info.spec.id, "b");
  std::unique_ptr<WorkerPool::Worker> a = pool_.TakeDead(kT0 + 4'000 + kGrace);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->info.spec.id, "a");
  EXPECT_EQ(a->running.count(Id(held)), 1u);
  EXPECT_EQ(pool_.TakeDead(kT0 + 100 * kGrace), nullptr);
  EXPECT_NE(pool_.epoch(), epoch);
  EXPECT_TRUE(pool_.empty());
  EXPECT_EQ(pool_.NextDeadline(), std::nullopt);
}

TEST_F(WorkerPoolTest, ALeasePassesATaskOverToABetterWaitingWorker) {
  Register("empty", {{"cpu", 4000}});
  Register("half", {{"cpu", 4000}});
  Start(Add(Needs({{"cpu", 2000}})), "half");
  Live* task = Add(Needs({{"cpu", 1000}}));
  waiters_.emplace(1, LeaseRequest{"default", "empty", {"q"}, 1, 0});
  waiters_.emplace(2, LeaseRequest{"default", "half", {"q"}, 1, 0});

  // Binpack: the busier worker is the better place.
  EXPECT_EQ(Pick("empty"), nullptr);
  EXPECT_TRUE(made_ready_) << "the better waiter must be served";
  made_ready_ = false;
  EXPECT_EQ(Pick("half"), task);
  EXPECT_FALSE(made_ready_);

  queue_.settings.placement = PlacementPolicy::kSpread;
  EXPECT_EQ(Pick("half"), nullptr);
  EXPECT_EQ(Pick("empty"), task);

  // A waiter of another queue is no competitor.
  waiters_.at(1).queues = {"other"};
  EXPECT_EQ(Pick("half"), task);
}

TEST_F(WorkerPoolTest, UnschedulableReasonNamesWhatNoLiveWorkerHas) {
  const Placement big = Needs({{"cpu", 8000}});
  EXPECT_EQ(pool_.UnschedulableReason("default", "q", big),
            "no live registered worker serves queue 'q' in namespace 'default'");
  Register("small", {{"cpu", 2000}}, {{"zone", "a"}});
  Register("big", {{"cpu", 4000}, {"memory_mb", 4096}}, {{"zone", "a"}});
  Register("other", {{"cpu", 16000}}, {}, {}, {"elsewhere"});
  EXPECT_EQ(pool_.UnschedulableReason("default", "q", big),
            "it requests cpu=8000; no live worker matching its labels has that much in all "
            "(worker big has cpu=4000, memory_mb=4096)");
  EXPECT_EQ(pool_.UnschedulableReason("default", "q",
                                      Needs({}, {Sel("zone", SelectorOp::kEquals, {"a"}),
                                                 Sel("gpu", SelectorOp::kExists)})),
            "no live worker has labels matching gpu set");
  EXPECT_EQ(pool_.UnschedulableReason("default", "q", Needs({{"cpu", 4000}})), "");
  EXPECT_EQ(pool_.UnschedulableReason("default", "q", Placement{}), "")
      << "a task that needs no registered worker is never unschedulable";
  // A broadcast copy is for its worker while that one lives, whoever else could run it.
  Placement copy = Needs({{"cpu", 1000}}, {Sel("zone", SelectorOp::kEquals, {"b"})});
  copy.worker = "small";
  EXPECT_EQ(pool_.UnschedulableReason("default", "q", copy),
            "it was made for worker small, which could not run it");
  copy.require.clear();
  copy.resources = {{"cpu", 3000}};
  EXPECT_EQ(pool_.UnschedulableReason("default", "q", copy),
            "it requests cpu=3000; no live worker matching its labels has that much in all "
            "(worker small has cpu=2000)");
  EXPECT_TRUE(pool_.AnyHasRoom("default", "q", Needs({{"cpu", 4000}})));
  EXPECT_FALSE(pool_.AnyHasRoom("default", "q", big));
}

TEST_F(WorkerPoolTest, BroadcastTargetsAreTheWorkersThatServeTheQueueAndCouldRunIt) {
  Register("d", {{"cpu", 1000}}, {{"zone", "a"}});
  Register("a", {{"cpu", 1000}}, {{"zone", "a"}}, {}, {"q"});
  Register("b", {{"cpu", 1000}}, {{"zone", "a"}}, {}, {"other"});
  Register("c", {{"cpu", 1000}}, {{"zone", "b"}});
  Register("e", {{"cpu", 500}}, {{"zone", "a"}});
  EXPECT_EQ(pool_.BroadcastTargets("default", "q",
                                   Needs({{"cpu", 1000}}, {Sel("zone", SelectorOp::kEquals, {"a"})})),
            (std::vector<std::string>{"a", "d"}));
  EXPECT_TRUE(pool_.BroadcastTargets("elsewhere", "q", Placement{}).empty());
  EXPECT_EQ(pool_.List("default").size(), 5u);
}

}  // namespace
}  // namespace dray
