// The registered workers and placement (docs/workers.md, docs/placement.md):
// which workers live, what each has and what its running tasks hold, the
// large task each may be reserved for, the affinity keys bound to each, and
// every decision about which worker may run a task with a Placement.
//
// Threading: not thread-safe. The engine owns one pool and calls it under
// the engine owner's lock, like the rest of the engine.
//
// Ownership: the pool owns its Worker records; a Worker* it hands out stays
// valid until the worker is deregistered or taken dead (the caller then
// owns the record). It reads the live tasks through the LiveTable given at
// construction, which must outlive it, and changes nothing of a task but
// its place in its queue's ready sets (below) and Extra::checked_epoch.
//
// Ready sets. A ready task with a Placement waits in its queue's `placed`
// set (heap_pos kPlaced) instead of the ready heap; a placed task that no
// live worker could run is moved to the queue's `parked` set (kParked) by
// the first lease scan that meets it after the live workers changed, and
// back by the registration of a worker that could run it. The engine puts
// every ready task in and out through PushReady and EraseReady.
//
// Holdings. A running task's resources (and GPU devices) are held by the
// registered worker that leased it from the moment it enters running until
// the moment it leaves, whatever the way; TrackRunning is told of both. The
// pool never steps a task: when a worker dies or leaves, the caller gets its
// record back and ends the tasks it held.
//
// Errors: none. Lookups answer null or empty when a worker or task is not
// there; the engine turns those into its Status answers.
//
// Complexity: W = the registered workers, H = the tasks one worker holds,
// R = the resources (and selectors) of a task or worker. Find, Saw,
// Register, Deregister, TakeDead: O(log W); Hold, Unhold: O(R log H); a
// ready set change: O(log n) in the queue. A pick looks at up to
// kPlacementScan + kPlacementSkips placed tasks (plus those it parks) and,
// for the one it would take, walks the waiters and compares up to
// kWaitersCompared of them, each check O(R log R); it checks a task against
// every worker (AnyAdmits) at most once per epoch. UnschedulableReason,
// AnyHasRoom, BroadcastTargets: O(W R) over the namespace's workers.
// ShadowTime: O(H log H).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dray/types.h"
#include "engine/indexed_heap.h"
#include "engine/live_table.h"

namespace dray {

struct LeaseRequest;  // engine.h

class WorkerPool {
 public:
  // A registered worker as the pool keeps it. The engine reads it; only the
  // pool changes it.
  struct Worker {
    // What one running task holds of the worker: taken when it starts,
    // given back exactly when the attempt ends.
    struct Holding {
      std::map<std::string, std::int64_t> resources;
      std::vector<std::string> gpus;  // device ids assigned to it
    };
    WorkerInfo info;  // `running`, `in_use`, `gpu_devices_in_use` and `reserved_for` left empty
    std::map<std::string, Holding> running;    // by task id
    std::map<std::string, std::int64_t> used;  // the sum of the holdings
    std::set<std::string> gpus_in_use;
    std::string reserved_for;             // a task id, or empty
    std::set<std::string> affinity_keys;  // keys bound to it
    TimeMs deadline = 0;                  // last_seen + the grace
    HeapPos heap_pos = kNotInHeap;
  };

  // The engine's long-poll waiters by arrival (oldest first): a lease passes
  // a placed task over when one of them is a better place for it.
  using Waiters = std::map<std::uint64_t, LeaseRequest>;

  // heap_pos of a ready task kept in its queue's `placed` or `parked` set.
  static constexpr HeapPos kPlaced = kNotInHeap - 1;
  static constexpr HeapPos kParked = kNotInHeap - 2;
  // Per queue and lease: placed tasks the leasing worker could run but has
  // no room for now, and tasks it could not run at all (labels, size, bound
  // elsewhere), that a lease looks at before it gives up on the rest.
  static constexpr int kPlacementScan = 128;
  static constexpr int kPlacementSkips = 8192;
  // Waiting workers compared per placed task.
  static constexpr int kWaitersCompared = 64;
  // ShadowTime when the running tasks' timeouts never free enough.
  static constexpr TimeMs kNever = std::numeric_limits<TimeMs>::max();

  // A worker silent for `grace_ms` after its last sign of life is dead.
  WorkerPool(const LiveTable& live, std::int64_t grace_ms);
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  ~WorkerPool();

  // --- The registry.
  bool empty() const { return workers_.empty(); }
  std::size_t size() const { return workers_.size(); }
  // The registered worker (ns, id), or null (an empty id: null).
  Worker* Find(const std::string& ns, const std::string& id) const;
  // Registers `spec` or replaces the spec of the worker with its id (a
  // restart of it: what it holds stays its own), counts a sign of life and
  // changes the epoch. The caller then offers it the parked tasks (Unpark).
  Worker& Register(WorkerSpec&& spec, TimeMs now);
  // Takes a worker out (leaving): its reservation and affinity keys fall.
  // Returns its record, whose `running` the caller must release, or null if
  // it is not registered.
  std::unique_ptr<Worker> Deregister(const std::string& ns, const std::string& id);
  // The next worker silent past the grace at `now`, taken out as Deregister
  // does, or null when none is.
  std::unique_ptr<Worker> TakeDead(TimeMs now);
  // When the next worker falls silent past the grace, if one is registered.
  std::optional<TimeMs> NextDeadline() const;
  // A sign of life from `w` (null: nothing) at `now`.
  void Saw(Worker* w, TimeMs now);
  // A call about running task `task_id`: its lease holder, if registered,
  // is alive, and holds the task (adopting one leased before it registered).
  void SawHolder(const std::string& ns, const std::string& task_id, TimeMs now);
  // Changes whenever a worker registers, leaves or dies.
  std::uint64_t epoch() const { return epoch_; }
  // The worker as the API shows it: its holdings and reservation filled in.
  static WorkerInfo View(const Worker& w);
  // The workers of a namespace in id order.
  std::vector<WorkerInfo> List(const std::string& ns) const;
  // The ids, in id order, of the workers of `ns` that serve `queue` and
  // could run `p` (a broadcast's copies go to them).
  std::vector<std::string> BroadcastTargets(const std::string& ns, const std::string& queue,
                                            const Placement& p) const;

  // --- Holdings. Task `task_id` (live task `l`, or null) of namespace `ns`
  // left running on `old_worker` or entered it on `new_worker` (either may
  // be empty or not registered): the holdings follow.
  void TrackRunning(const Live* l, const std::string& ns, const std::string& old_worker,
                    const std::string& new_worker, const std::string& task_id);
  // `w` holds the task's resources, GPU devices (as many of its free
  // devices as the task's "gpu", in device order) and affinity key. A task
  // it already holds: nothing. Drops the task's reservation.
  void Hold(Worker* w, const Live* l, const std::string& task_id);
  // Gives back what `w` holds for the task, if anything.
  void Unhold(Worker* w, const std::string& task_id);

  // --- Ready sets.
  static const Placement* PlacementOf(const Live* l) {
    return l->extra ? l->extra->placement.get() : nullptr;
  }
  void PushReady(QueueState* q, Live* l);   // into the heap, or `placed`
  void EraseReady(QueueState* q, Live* l);  // out of whichever holds it
  static bool HasReady(const QueueState& q);
  // Ready tasks in `placed` sets, over all queues.
  std::size_t placed_ready() const { return placed_ready_; }
  // Puts back in `q`'s placed set, in their place in line, the parked tasks
  // `w` could run; true if it moved any.
  bool Unpark(const Worker& w, QueueState* q);

  // --- Leasing. The task a lease by `w` (null: an unregistered worker)
  // takes from `q` next, or null: the first in the queue's order that `w`
  // admits, is not bound elsewhere, and fits what `w` has free, less what a
  // reservation keeps (or backfills it); a plain task from the ready heap
  // when that comes first. On the way it may reserve `w` for the first
  // placed task that fits it whole but not free, park tasks no live worker
  // could run, and pass a task over to a better worker among `waiters`
  // (then sets *made_ready: that waiter is to be served).
  Live* PickFor(QueueState* q, Worker* w, const Waiters& waiters, TimeMs now, bool* made_ready);

  // --- Reads.
  // Why no live worker of the namespace could ever run a task of `queue`
  // with `p`, in words, or "" if one could.
  std::string UnschedulableReason(const std::string& ns, const std::string& queue,
                                  const Placement& p) const;
  // Whether some live worker that could run it has room for it now.
  bool AnyHasRoom(const std::string& ns, const std::string& queue, const Placement& p) const;
  // The worker reserved for task `task_id`, or null.
  const Worker* ReservedFor(const std::string& task_id) const;

  // --- Decisions of one worker: pure.
  // Whether `w` could run `p` at all: its labels and its whole capacity.
  static bool Admits(const Worker& w, const Placement& p);
  // Whether `p` fits what `w` has free, less `keep` (a reservation's need).
  static bool FitsFree(const Worker& w, const Placement& p, const Placement* keep);
  // How good a place `w` is for `p` under `policy`: the weights of the
  // preferences it matches first, then how full it is (binpack: fuller is
  // better; spread: emptier). Higher is better.
  static double Score(const Worker& w, const Placement& p, PlacementPolicy policy);
  // When enough of `w`'s running tasks must have ended (by their attempt
  // timeouts) for `r` to fit its free capacity: `now` if it fits now,
  // kNever if the timeouts never free enough.
  TimeMs ShadowTime(const Worker& w, const Placement& r, TimeMs now) const;

 private:
  enum class Verdict { kTake, kWait, kNotHere };
  struct DeadlineLess {
    bool operator()(const Worker* a, const Worker* b) const { return a->deadline < b->deadline; }
  };
  struct DeadlinePos {
    HeapPos& operator()(Worker* w) const { return w->heap_pos; }
  };

  Live* FindLive(const std::string& ns, const std::string& id) const;
  std::unique_ptr<Worker> Remove(std::map<std::pair<std::string, std::string>,
                                          std::unique_ptr<Worker>>::iterator it);
  // What a lease by `w` may do with placed task `c`. `reserved`: the task
  // `w` is held for, if any; set when `c` takes it.
  Verdict MayTake(Worker* w, const Live*& reserved, Live* c, const Waiters& waiters, TimeMs now,
                  bool* made_ready);
  // Whether some live worker (or, for a task that needs none, any worker)
  // could run it.
  bool AnyAdmits(const Live* c, const Placement& p) const;
  void Park(QueueState* q, Live* c);
  // The live worker a pinned or affinity-keyed task must go to, or null.
  const Worker* TargetOf(const Live* c, const Placement& p) const;
  // The task `w` is reserved for, if that reservation still stands.
  const Live* ReservationOf(Worker* w);
  void Reserve(Worker* w, const Live* c);
  void DropReservation(const std::string& task_id);
  // Whether a worker waiting in a long poll would be a better place for `c`.
  bool BetterWaiter(const Worker* w, const Live* c, const Placement& p,
                    const Waiters& waiters) const;
  // A worker gone (dead or left): its reservation and affinity keys.
  void Forget(Worker* w);

  const LiveTable& live_;
  const std::int64_t grace_ms_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Worker>> workers_;
  IndexedHeap<Worker, DeadlineLess, DeadlinePos> deadlines_;
  std::size_t placed_ready_ = 0;
  std::uint64_t epoch_ = 1;
  // (ns, affinity key) -> the worker it is bound to.
  std::map<std::pair<std::string, std::string>, std::string> affinity_;
  // Reserved task id -> its worker.
  std::unordered_map<std::string, Worker*> reservations_;
};

}  // namespace dray
