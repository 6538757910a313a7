// The engine: every live (non-terminal) task's scheduling state in memory,
// and every scheduling decision.
//
// Threading: not thread-safe. One owner (the server's TaskService) calls it
// under one lock; that lock also orders the mutations it hands to the commit
// pipeline, so the store sees them in the order the engine decided them.
//
// The engine does no I/O and never reads the clock: every call takes `now`.
// Each mutating call appends what must become durable to `out->mutations`;
// the caller must not answer its client before those are committed. A task
// that reaches a terminal state leaves memory at once (the store keeps it);
// its id is listed in `out->finished`.
//
// Order: within a queue, lower priority runs first, then earlier submit
// (seq), which also breaks ties deterministically. Across the queues of one
// lease, stride scheduling: each queue has a pass that a lease from it
// advances by 1/weight, and the queue with the lowest pass goes next (a
// queue that was idle starts from the current pass, so it gets no burst of
// credit); equal passes go by priority.
//
// Limits (docs/limits.md). A ready task is in its queue's ready heap only
// if its concurrency key, if any, lets it start: the key's unfinished tasks
// in submit order form a window of the key's limit, and only a ready task
// inside the window, while fewer than the limit of the key's tasks run, is
// in the heap. The queue's concurrency limit and token bucket are checked
// when a lease picks the queue. A task left waiting by a limit says why in
// Task::wait_reason when it is read (see WaitReasonOf).
//
// Memory: a live task is one allocation holding its scheduling fields, its
// id as 16 bytes, pointers to its queue and to interned type and backoff
// values, and its payload inline; what most tasks lack (key, labels,
// timeouts, a lease, results, attempt history) hangs off an optional side
// record. The id index is an intrusive hash table (a pointer per task and
// one per bucket). bench/run.sh w4 measures the bytes per task.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "core/state_machine.h"
#include "dray/status.h"
#include "dray/types.h"
#include "engine/indexed_heap.h"
#include "engine/live_table.h"
#include "engine/schedule_book.h"
#include "engine/trigger_book.h"
#include "engine/worker_pool.h"
#include "core/records.h"

namespace dray {

struct EngineOptions {
  std::int64_t idempotency_window_ms = 24LL * 3600 * 1000;
  std::size_t max_live_tasks = 10'000'000;
  std::uint64_t seed = 0;  // backoff jitter; 0 = random
  // A registered worker silent this long is declared dead (its tasks are
  // released at once).
  std::int64_t worker_grace_ms = 10'000;
};

// What one engine call produced, besides its answer.
struct EngineOutput {
  std::vector<Mutation> mutations;    // to commit, in order
  std::vector<std::string> finished;  // ids that became terminal
  std::vector<std::string> changed;   // ids whose state changed (any)
  bool made_ready = false;            // some task became ready: serve waiters
};

struct SubmitOutcome {
  std::string id;
  bool created = true;  // false: an idempotency key matched an earlier task
};

struct WorkflowOutcome {
  Workflow workflow;
  std::vector<std::pair<std::string, std::string>> tasks;  // (name, id), as submitted
};

// A live workflow as the engine sees it.
struct WorkflowStatus {
  Workflow workflow;
  std::int64_t unfinished = 0;
};

struct LeaseRequest {
  std::string ns = "default";
  std::string worker;
  std::vector<std::string> queues;
  std::size_t max = 1;
  std::int64_t lease_ms = 0;  // 0 = the task's, else the queue's default
};

struct HeartbeatOutcome {
  TimeMs expires_at = 0;
  bool cancel_requested = false;
};

class Engine {
 public:
  explicit Engine(EngineOptions options);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // --- Recovery: before any other call, feed the engine what the store has.
  void RestoreQueue(const QueueRecord& q);
  // A non-terminal task. DataLoss if its id is not one Dray makes.
  Status RestoreTask(Task&& task);
  void RestoreKey(const std::string& ns, const std::string& key, const std::string& id,
                  TimeMs created_at);
  void RestoreMarks(const StoreMarks& marks);
  // Finished tasks per queue and state, so that queue counts need no scan.
  void RestoreFinishedCounts(const std::vector<StateCount>& counts);
  // A finished task was purged from the store.
  void ForgetFinished(const std::string& ns, const std::string& queue, TaskState state);
  // A running workflow, before its tasks are restored; `failed_tasks` of
  // its tasks had already ended failed or cancelled.
  void RestoreWorkflow(const Workflow& w, std::int64_t failed_tasks);
  // After every task is restored: links dependencies again. `stored` reads
  // a task that is no longer live (a finished dependency) from the store.
  // Repairs what a consistent store never holds (a blocked task whose
  // dependencies all finished; a running workflow with no live task) and
  // puts those repairs in `out`.
  void FinishRecovery(const std::function<StatusOr<Task>(const std::string& ns,
                                                         const std::string& id)>& stored,
                      TimeMs now, EngineOutput* out);

  // --- Producers.
  // Accepts all specs or none. ResourceExhausted past max_live_tasks.
  StatusOr<std::vector<SubmitOutcome>> Submit(std::vector<TaskSpec>&& specs, TimeMs now,
                                               EngineOutput* out);
  // Cancels a live task (a running one is only marked cancel-requested).
  // NotFound if the task is not live here.
  StatusOr<Task> Cancel(const std::string& ns, const std::string& id, TimeMs now,
                        EngineOutput* out);
  // Runs a terminal task again; `stored` is its committed row. Refused unless
  // it is failed or cancelled, and for a task of a workflow.
  StatusOr<Task> Retry(Task stored, TimeMs now, EngineOutput* out);

  // --- Workflows (docs/workflows.md). All tasks and the workflow's row are
  // created in one output, or nothing is (InvalidArgument naming the
  // culprit: a duplicate name, an unknown dependency, a cycle). A
  // dependency that is not a name in the workflow is a task id: live here,
  // or finished and in `finished` (its stored row, read by the caller).
  // O(tasks + edges).
  StatusOr<WorkflowOutcome> SubmitWorkflow(WorkflowSpec&& spec,
                                           const std::map<std::string, Task>& finished,
                                           TimeMs now, EngineOutput* out);
  // Cancels every unfinished task of a live workflow (running ones are asked
  // to stop); the workflow ends cancelled once they all have. NotFound if it
  // is not live here.
  StatusOr<Workflow> CancelWorkflow(const std::string& ns, const std::string& id, TimeMs now,
                                    EngineOutput* out);
  std::optional<WorkflowStatus> FindWorkflow(const std::string& ns, const std::string& id) const;
  std::size_t live_workflows() const { return workflows_.size(); }

  // --- Schedules (docs/schedules.md). The engine holds every schedule and
  // fires each due tick in Tick: the tick's task and the schedule's new
  // state (last_tick, last_task, counts) go out in the same output, so one
  // commit records both and a restart neither repeats nor loses a tick.
  // O(log schedules) per firing.
  //
  // After the tasks are restored (overlap looks at the last run's task).
  void RestoreSchedule(Schedule s, TimeMs now);
  // AlreadyExists if the id is taken; the first tick is the first after
  // `now` (and after start_at). An empty id gets a UUIDv7.
  StatusOr<Schedule> CreateSchedule(ScheduleSpec&& spec, TimeMs now, EngineOutput* out);
  // Replaces a schedule's spec. A new timing (cron, zone, interval, start)
  // counts from `now`; otherwise the ticks missed while paused are treated
  // by the misfire policy when it resumes. NotFound if there is none.
  StatusOr<Schedule> UpdateSchedule(ScheduleSpec&& spec, TimeMs now, EngineOutput* out);
  // Its tasks already submitted stay. NotFound if there is none.
  Status DeleteSchedule(const std::string& ns, const std::string& id, EngineOutput* out);
  // With the next `next_n` fire times from `now`.
  std::optional<Schedule> FindSchedule(const std::string& ns, const std::string& id,
                                       std::size_t next_n, TimeMs now) const;
  // Up to `limit` schedules of a namespace with ids after `after`, in id order.
  std::vector<Schedule> ListSchedules(const std::string& ns, const std::string& after,
                                      std::size_t limit, std::size_t next_n, TimeMs now) const;
  std::size_t schedules() const { return schedules_.size(); }
  // Since the engine started: ticks that submitted a task, and ticks let go.
  std::uint64_t ticks_fired() const { return schedules_.ticks_fired(); }
  std::uint64_t ticks_skipped() const { return schedules_.ticks_skipped(); }

  // --- Events and triggers (docs/events.md). A trigger on an event name
  // submits its task in the output that records the event; a trigger on
  // task outcomes submits in the output of the transition that ended the
  // task. Either way one commit holds both: a recorded event or outcome
  // never loses its tasks, and never gets them twice.
  void RestoreTrigger(Trigger t);
  // An event id seen within the de-duplication window (recovery).
  void RestoreEventId(const std::string& ns, const std::string& id, TimeMs created_at);
  // AlreadyExists if the id is taken; an empty id gets a UUIDv7.
  StatusOr<Trigger> CreateTrigger(TriggerSpec&& spec, TimeMs now, EngineOutput* out);
  StatusOr<Trigger> SetTriggerPaused(const std::string& ns, const std::string& id, bool paused,
                                     TimeMs now, EngineOutput* out);
  Status DeleteTrigger(const std::string& ns, const std::string& id, EngineOutput* out);
  std::optional<Trigger> FindTrigger(const std::string& ns, const std::string& id) const;
  std::vector<Trigger> ListTriggers(const std::string& ns, const std::string& after,
                                    std::size_t limit) const;
  using EventOutcome = dray::EventOutcome;  // trigger_book.h
  // Records an event and submits a task for each trigger on its name that
  // is not paused and for which `matches` (the caller reads the payload)
  // holds. ResourceExhausted, doing nothing, past max_live_tasks.
  StatusOr<EventOutcome> EmitEvent(EventSpec&& spec,
                                   const std::function<bool(const TriggerSpec&)>& matches,
                                   TimeMs now, EngineOutput* out);
  std::size_t triggers() const { return triggers_.size(); }

  // --- Registered workers (issue 7). Registration is soft state: it lives
  // in memory, and a worker re-registers after a server restart (its
  // heartbeat answers NotFound). A lease, a task heartbeat or a worker
  // heartbeat from it counts as a sign of life.
  // Registers or replaces (same id: a restart of the worker); the tasks it
  // holds stay its own.
  WorkerInfo RegisterWorker(WorkerSpec&& spec, TimeMs now, EngineOutput* out);
  StatusOr<WorkerInfo> WorkerHeartbeat(const std::string& ns, const std::string& id, TimeMs now,
                                       EngineOutput* out);
  // A worker leaving: the tasks it holds are released at once (retried with
  // backoff like an expired lease). NotFound if it is not registered.
  Status DeregisterWorker(const std::string& ns, const std::string& id, TimeMs now,
                          EngineOutput* out);
  std::optional<WorkerInfo> FindWorker(const std::string& ns, const std::string& id) const;
  std::vector<WorkerInfo> Workers(const std::string& ns) const;
  std::size_t workers() const { return pool_.size(); }

  // --- Placement (docs/placement.md). A task with a Placement runs only
  // where it fits: a lease hands it to a registered worker whose labels
  // match its requirements and whose free capacity holds its resources;
  // the worker holds them until the attempt ends, however it ends, so a
  // worker is never over-committed. Among workers asking at once (long
  // polls), the queue's policy (binpack or spread) and the task's
  // preferences choose. A task that fits no free worker now but fits one
  // whole reserves that worker: smaller tasks use only what it does not
  // need, or all of it when their timeout ends before the running tasks'
  // timeouts free enough (backfill). A task no live worker could ever take
  // reads `unschedulable` with the reason.
  //
  // One copy of `spec` for each live registered worker that serves its
  // queue and could run it, pinned to it, with shard index and total.
  // FailedPrecondition if there is none. With a key, a repeat within the
  // idempotency window answers the first broadcast's copies.
  StatusOr<std::vector<BroadcastCopy>> SubmitBroadcast(TaskSpec&& spec, TimeMs now,
                                                       EngineOutput* out);

  // --- Workers. A wrong or old token is Aborted and changes nothing.
  StatusOr<std::vector<LeasedTask>> Lease(const LeaseRequest& req, TimeMs now, EngineOutput* out);
  StatusOr<HeartbeatOutcome> Heartbeat(const std::string& ns, const std::string& id,
                                       std::string_view token, std::int64_t lease_ms, TimeMs now,
                                       EngineOutput* out);
  StatusOr<Task> Complete(const std::string& ns, const std::string& id, std::string_view token,
                          std::string result, TimeMs now, EngineOutput* out);
  // `result` (JSON text, may be empty) is kept as the task's result too.
  StatusOr<Task> Fail(const std::string& ns, const std::string& id, std::string_view token,
                      std::string error, bool retry, std::string result, TimeMs now,
                      EngineOutput* out);

  // --- Long-poll leases. A waiter is served (and removed) by ServeWaiters as
  // soon as tasks are ready in one of its queues, oldest waiter first. The
  // engine holds only the request it decides with; the caller keeps the
  // waiter itself, its answer and its deadline (server/wait_list.h).
  void AddWaiter(std::uint64_t waiter_id, LeaseRequest req);
  void RemoveWaiter(std::uint64_t waiter_id);
  std::vector<std::pair<std::uint64_t, std::vector<LeasedTask>>> ServeWaiters(TimeMs now,
                                                                              EngineOutput* out);

  // --- Time. Fires every timer due at `now`: scheduled tasks become ready,
  // expired leases and timed-out attempts fail. Every mutating call above
  // runs it first, so decisions never use stale timers. Due schedules are
  // handled up to 2,048 a call (the caller holds a lock), the rest on the
  // next: NextWakeup is then `now`.
  void Tick(TimeMs now, EngineOutput* out);
  // The earliest time Tick has work, if any.
  std::optional<TimeMs> NextWakeup() const;

  // --- Queues.
  StatusOr<QueueSettings> PatchQueue(const std::string& ns, const std::string& name,
                                     const std::function<Status(QueueSettings*)>& patch,
                                     EngineOutput* out);
  // The queues of a namespace with their counts by state (finished tasks
  // included, until purged).
  std::vector<QueueInfo> Queues(const std::string& ns) const;
  std::optional<QueueInfo> FindQueue(const std::string& ns, const std::string& name) const;

  // --- Reads.
  // A copy of the live task, or nullopt if it is not live here. A task that
  // waits says why in wait_reason:
  //   scheduled          run_at is ahead
  //   backoff            a retry waits out its backoff
  //   dependencies       blocked on tasks that have not finished
  //   queue_paused       its queue is paused
  //   concurrency_key    its key's limit, or earlier tasks of its key
  //   queue_concurrency  its queue's concurrency limit is reached
  //   rate_limit         its queue's token bucket is empty
  //   unschedulable      no live worker could ever run it (labels, capacity)
  //   resources          no live worker that could run it has room free now
  //   worker             nothing holds it back: no worker has leased it yet
  // and in wait_detail says it in words, with the numbers.
  std::optional<Task> Find(const std::string& ns, const std::string& id) const;
  bool IsLive(const std::string& ns, const std::string& id) const;
  std::size_t live_tasks() const { return live_.size(); }
  std::size_t waiters() const { return waiters_.size(); }

 private:
  // A task with dependents finished: what they need of it.
  struct Finished {
    IdBytes id;
    std::string workflow;
    std::string node;
    TaskState state;
    std::shared_ptr<const std::string> result;
    std::vector<IdBytes> children;
  };
  QueueState& QueueFor(const std::string& ns, const std::string& name, EngineOutput* out);
  Live* FindLive(const std::string& ns, const std::string& id) const;
  // Joins a task just compacted from `t` to its workflow and its
  // concurrency key's group.
  void Link(Live* l, const Task& t);
  StatusOr<Live*> FindLeased(const std::string& ns, const std::string& id, std::string_view token);
  // Decides and applies `event` to a live task, keeping every index right.
  // When `after` is given, it receives the task as the step left it.
  Status Step(Live* l, const EventInput& event, const ApplyInput& in, EngineOutput* out,
              Task* after = nullptr);
  // Puts a live task in the heap its state needs (a keyed ready task: if
  // its key lets it start) and counts it.
  void Index(Live* l, EngineOutput* out);
  void Unindex(Live* l);  // takes it out of it
  std::int32_t KeyLimit(const QueueState& q, const KeyGroup& g) const;
  // Puts in the ready heap (or takes out) the ready tasks of a key whose
  // right to start changed. O(limit).
  void RefreshKey(QueueState* q, KeyGroup* g, EngineOutput* out);
  // Whether a lease may start a task of `q` now (ready work, its
  // concurrency limit and its token bucket); records a throttled queue so
  // that Tick wakes waiters when a token comes.
  bool CanStart(QueueState* q, TimeMs now);
  // When a rate-limited queue may next start a task.
  static TimeMs TokenAt(const QueueState& q);
  // A new task from a spec (ids, defaults, seq); not yet inserted.
  Task MakeTask(TaskSpec&& spec, const QueueState& q, TimeMs now);
  // A finished task's dependents: released, or cancelled by its failure.
  void Release(const Finished& f, TimeMs now, EngineOutput* out);
  // A task of `w` finished: ends the workflow if it was the last.
  void TaskOfWorkflowFinished(WorkflowLive* w, TaskState state, TimeMs now, EngineOutput* out);
  void EmitWorkflow(const WorkflowLive& w, EngineOutput* out);
  std::vector<ParentResult> ParentsOf(const Live* l) const;
  // Why a live task that is not running waits: {code, words}.
  std::pair<std::string, std::string> WaitReasonOf(const Live* l) const;
  // Queues the task's new state for the store: a whole new row when
  // `created`, else an update of the fields a transition changes.
  void Emit(std::shared_ptr<const Task> snapshot, bool created, EngineOutput* out);
  Live* Insert(Task&& task, EngineOutput* out);
  void PruneKeys(TimeMs now);
  // Schedules: fires what is due at `now` into `out` (schedules.cc).
  void FireSchedules(TimeMs now, EngineOutput* out);
  // The engine as the schedule and trigger books see it during one
  // call: a TaskHost bound to the call's output (book_host.h).
  class BookHost;
  // Workers (workers.cc; the pool decides, the engine steps): declares
  // dead those silent past the grace; ends the attempts a gone worker held.
  void ReapWorkers(TimeMs now, EngineOutput* out);
  void ReleaseTasksOf(const WorkerPool::Worker& w, const std::string& why, TimeMs now,
                      EngineOutput* out);
  std::int64_t LeaseMsFor(const Live* l, std::int64_t requested) const;

  const EngineOptions options_;
  IdGenerator ids_;
  std::mt19937_64 rng_;
  std::uint64_t next_token_ = 1;
  std::uint64_t next_seq_ = 1;

  LiveTable live_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<QueueState>> queues_;
  TimerHeap timers_;

  struct KeyEntry {
    std::string id;
    TimeMs created_at;
  };
  std::unordered_map<std::string, KeyEntry> keys_;  // ns + '\0' + key
  std::deque<std::pair<TimeMs, std::string>> key_order_;  // (created_at, map key)

  WorkerPool::Waiters waiters_;  // ordered by id = arrival
  double vtime_ = 0;  // stride scheduling: the pass of the last queue leased from
  std::map<std::pair<std::string, std::string>, std::unique_ptr<WorkflowLive>> workflows_;
  // Dependents to release, drained by the outermost Step (iteratively, so
  // that a chain of 10,000 tasks does not recurse 10,000 deep).
  std::deque<Finished> cascade_;
  bool draining_ = false;
  std::vector<Live*> restored_with_deps_;  // recovery: linked by FinishRecovery
  std::set<QueueState*> throttled_;  // out of tokens with ready work

  ScheduleBook schedules_{&ids_};

  TriggerBook triggers_{&ids_, options_.idempotency_window_ms};
  WorkerPool pool_;  // registered workers and placement
};

}  // namespace dray
