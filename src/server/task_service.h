// TaskService: the engine, the commit pipeline and the store put together,
// with the rule that makes Dray durable: a caller's callback runs only once
// everything the call changed is committed and synced.
//
// Threading: every method may be called from any thread. One mutex (mu_)
// covers the engine, the waiter tables and the ticker; mutations are handed
// to the pipeline while mu_ is held, so the store applies them in the order
// the engine decided them. Callbacks run on an io_context thread (answers
// to committed writes are posted there from the pipeline's thread, which
// should only commit), never with mu_ held, and must not block.
#pragma once

#include <atomic>
#include <cassert>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/clock.h"
#include "core/mutex.h"
#include "engine/engine.h"
#include "server/change_feed.h"
#include "server/server_config.h"
#include "server/wait_list.h"
#include "store/commit_pipeline.h"
#include "store/disk_guard.h"
#include "store/store.h"

namespace dray {

template <typename T>
using Callback = std::function<void(StatusOr<T>)>;

struct AckItem {
  std::string id;
  std::string token;
  bool success = true;
  std::string result;  // JSON text; for a failure optional (empty = none)
  std::string error;   // failure
  bool retry = true;   // failure
};

struct AckOutcome {
  std::string id;
  Status status;
  TaskState state = TaskState::kRunning;
};

// A workflow with its tasks, as GET /v1/workflows/{id} shows it.
struct WorkflowView {
  Workflow workflow;
  std::vector<Task> tasks;  // in submit order; live ones with their wait_reason
};

struct ServiceStats {
  std::size_t live_tasks = 0;
  std::size_t live_workflows = 0;
  std::size_t schedules = 0;
  std::size_t triggers = 0;
  std::size_t stream_subscribers = 0;
  std::size_t workers = 0;
  std::uint64_t ticks_fired = 0;    // since start
  std::uint64_t ticks_skipped = 0;  // since start
  std::size_t lease_waiters = 0;
  std::size_t task_waiters = 0;
  CommitStats commits;
  std::size_t commit_backlog = 0;       // mutations waiting for the commit thread
  std::uint64_t refused_overload = 0;   // submits refused with 429 for the backlog
  bool disk_full = false;               // the disk guard refuses submits
  std::uint64_t disk_free_bytes = 0;    // as the guard last saw it
  std::uint64_t store_round_trips = 0;  // Store::round_trips()
};

class TaskService {
 public:
  // `store` and `clock` must outlive the service. Timers run on `ioc`.
  // `disk` (optional) refuses submits while the data's disk is full.
  TaskService(boost::asio::io_context& ioc, Store* store, Clock* clock, const ServerConfig& config,
              DiskGuard* disk = nullptr);
  ~TaskService();

  // Rebuilds the engine from the store. Call once, before anything else.
  Status Recover();
  // Starts the ticker (timers, retention purge).
  void Start();
  // Answers every long-poll at once, stops the timers, commits what is
  // queued. Later calls get Unavailable.
  void Stop();

  void Submit(std::vector<TaskSpec> specs, Callback<std::vector<SubmitOutcome>> done);
  // wait_ms > 0: answers when the task is terminal or when wait_ms passes.
  void Get(const std::string& ns, const std::string& id, std::int64_t wait_ms,
           Callback<Task> done);
  StatusOr<TaskPage> List(const TaskQuery& query);
  void Cancel(const std::string& ns, const std::string& id, Callback<Task> done);
  void Retry(const std::string& ns, const std::string& id, Callback<Task> done);

  // Workflows: all tasks in one commit, or none. Dependencies on tasks
  // outside the workflow are read from the store first (after a barrier,
  // so that the rows are as the engine last decided them).
  void SubmitWorkflow(WorkflowSpec spec, Callback<WorkflowOutcome> done);
  // wait_ms > 0: answers when the workflow has finished, or when wait_ms
  // passes (then as it is).
  void GetWorkflow(const std::string& ns, const std::string& id, bool with_tasks,
                   std::int64_t wait_ms, Callback<WorkflowView> done);
  StatusOr<WorkflowPage> ListWorkflows(const WorkflowQuery& query);
  // Cancelling a cancelled workflow answers it as it is; any other
  // finished one is FailedPrecondition.
  void CancelWorkflow(const std::string& ns, const std::string& id, Callback<Workflow> done);

  // Schedules (docs/schedules.md). Answers carry the next `next_n` fire
  // times. `patch` makes the new spec from the current one; it runs under
  // the service's lock, so two concurrent PATCHes do not lose each other's
  // fields.
  void CreateSchedule(ScheduleSpec spec, Callback<Schedule> done);
  using SchedulePatch = std::function<StatusOr<ScheduleSpec>(const ScheduleSpec& current)>;
  void PatchSchedule(const std::string& ns, const std::string& id, SchedulePatch patch,
                     Callback<Schedule> done);
  void DeleteSchedule(const std::string& ns, const std::string& id, Callback<bool> done);
  StatusOr<Schedule> GetSchedule(const std::string& ns, const std::string& id,
                                 std::size_t next_n);
  std::vector<Schedule> ListSchedules(const std::string& ns, const std::string& after,
                                      std::size_t limit, std::size_t next_n);

  // Events and triggers (docs/events.md). An event is recorded with the
  // tasks its triggers submit in one commit; a duplicate id (within the
  // idempotency window) answers the event as first recorded, with
  // `duplicate` set, and does nothing.
  struct EventAnswer {
    Event event;
    bool duplicate = false;
  };
  void EmitEvent(EventSpec spec, Callback<EventAnswer> done);
  StatusOr<Event> GetEvent(const std::string& ns, const std::string& id);
  void CreateTrigger(TriggerSpec spec, Callback<Trigger> done);
  void SetTriggerPaused(const std::string& ns, const std::string& id, bool paused,
                        Callback<Trigger> done);
  void DeleteTrigger(const std::string& ns, const std::string& id, Callback<bool> done);
  StatusOr<Trigger> GetTrigger(const std::string& ns, const std::string& id);
  std::vector<Trigger> ListTriggers(const std::string& ns, const std::string& after,
                                    std::size_t limit);

  // One copy of `spec` per live registered worker that could run it
  // (docs/placement.md); FailedPrecondition if there is none.
  void Broadcast(TaskSpec spec, Callback<std::vector<BroadcastCopy>> done);

  // Registered workers (docs/workers.md).
  void RegisterWorker(WorkerSpec spec, Callback<WorkerInfo> done);
  void WorkerHeartbeat(const std::string& ns, const std::string& id, Callback<WorkerInfo> done);
  void DeregisterWorker(const std::string& ns, const std::string& id, Callback<bool> done);
  StatusOr<WorkerInfo> GetWorker(const std::string& ns, const std::string& id);
  std::vector<WorkerInfo> Workers(const std::string& ns);
  std::int64_t worker_grace_ms() const { return config_.worker_grace_ms; }

  // GET /v1/stream: task changes matching `filter` as server-sent events to
  // `out`, from `last_event_id` (see ChangeFeed) or from now; a stream that
  // follows one task and does not resume starts with the task's state.
  // NotFound for a task that does not exist.
  Status Stream(ChangeFilter filter, const std::string& last_event_id,
                const std::shared_ptr<HttpStream>& out);

  // wait_ms > 0: when nothing is ready, holds the call until a task is or
  // wait_ms passes (then an empty list). `on_abandon`, if given, is handed
  // a function to run if the caller goes away meanwhile (its connection
  // closed): the wait then ends without leasing anything to it, so that no
  // task waits out a lease held by nobody.
  using AbandonHook = std::function<void(std::function<void()>)>;
  void Lease(LeaseRequest req, std::int64_t wait_ms, Callback<std::vector<LeasedTask>> done,
             const AbandonHook& on_abandon = {}) DRAY_EXCLUDES(mu_);
  void Heartbeat(const std::string& ns, const std::string& id, const std::string& token,
                 std::int64_t lease_ms, Callback<HeartbeatOutcome> done);
  void Complete(const std::string& ns, const std::string& id, const std::string& token,
                std::string result, Callback<Task> done);
  void Fail(const std::string& ns, const std::string& id, const std::string& token,
            std::string error, bool retry, std::string result, Callback<Task> done);
  // One outcome per item, in order; the whole batch shares one commit.
  void Ack(const std::string& ns, std::vector<AckItem> items,
           Callback<std::vector<AckOutcome>> done);

  StatusOr<std::vector<QueueInfo>> Queues(const std::string& ns);
  StatusOr<QueueInfo> GetQueue(const std::string& ns, const std::string& name);
  void PatchQueue(const std::string& ns, const std::string& name,
                  std::function<Status(QueueSettings*)> patch, Callback<QueueInfo> done);

  // OK when the service accepts writes; otherwise why not.
  Status Ready() const;
  ServiceStats stats() const;
  // Whether a submit may come in: OutOfSpace while the disk guard is full,
  // ResourceExhausted (counted) while the commit backlog is at
  // max_commit_backlog, OK otherwise. Cheap and free of mu_: the API asks
  // before parsing a submit's body, and Submit() asks again.
  Status Admission();

 private:
  // What each kind of long-poll waiter needs to be answered (WaitList
  // holds them with their deadlines).
  using LeaseWaiter = Callback<std::vector<LeasedTask>>;
  struct TaskWaiter {
    std::string ns;
    Callback<Task> done;
  };
  struct WorkflowWaiter {
    std::string ns;
    bool with_tasks;
    Callback<WorkflowView> done;
  };

  // An engine step's output on its way to CommitLocked, which must take it.
  // In debug builds, dropping one that still holds mutations or a wake-up
  // for waiters fails an assert: that is how a step's tick (leases expired,
  // schedules fired) was once lost when the step itself then failed.
  class PendingOutput {
   public:
    PendingOutput() = default;
    PendingOutput(const PendingOutput&) = delete;
    PendingOutput& operator=(const PendingOutput&) = delete;
    ~PendingOutput() { assert(taken_ || (out_.mutations.empty() && !out_.made_ready)); }
    EngineOutput* get() { return &out_; }
    EngineOutput Take() {
      taken_ = true;
      return std::move(out_);
    }

   private:
    EngineOutput out_;
    bool taken_ = false;
  };

  // What a change is checked for before its step runs.
  enum class Admit {
    kWrite,   // the service accepts writes (not stopping, store healthy)
    kSubmit,  // and Admission(): new tasks (disk space, commit backlog)
  };
  template <typename T>
  using Step = std::function<StatusOr<T>(Engine& engine, TimeMs now, EngineOutput* out)>;
  // Runs on an io thread once a step's output is committed (or failed to
  // be): `commit` says which, `value` is what the step returned.
  template <typename T>
  using OnDurable = std::function<void(const Status& commit, T value)>;

  // The one path for a change. With mu_ held: refuses unless `admit`
  // holds, runs `step` on the engine, and commits everything the step put
  // in its output whether the step succeeded or failed, so that what a
  // step's tick changed before it failed is committed, published and served
  // like any other change. On success `then` runs once the commit is done
  // and OK is returned; otherwise `then` never runs and the refusal or the
  // step's error is returned for the caller to answer (or, for NotFound, to
  // look in the store).
  template <typename T>
  Status MutateLocked(Admit admit, const Step<T>& step, OnDurable<T> then) DRAY_REQUIRES(mu_);
  // MutateLocked under mu_, answering `done` with the value once durable or
  // with the error (after mu_ is released).
  template <typename T>
  void Mutate(Admit admit, const Step<T>& step, Callback<T> done) DRAY_EXCLUDES(mu_);
  // MutateLocked's last part, for the steps that wait (Lease): serves lease
  // waiters if tasks became ready, re-arms the ticker, and hands `out` to the
  // pipeline; `done` runs on an io thread once it is durable.
  void CommitLocked(PendingOutput& out, std::function<void(const Status&)> done)
      DRAY_REQUIRES(mu_);
  // Pipeline thread: a batch is durable; wake those waiting on its tasks.
  void OnCommitted(const Status& s, const std::vector<std::shared_ptr<const Task>>& finished);
  // Pipeline thread: workflows finished in a durable batch; answer waiters.
  void OnWorkflowsCommitted(const std::vector<std::shared_ptr<const Workflow>>& finished);
  // GetWorkflow without waiting.
  void ReadWorkflow(const std::string& ns, const std::string& id, bool with_tasks,
                    Callback<WorkflowView> done) DRAY_EXCLUDES(mu_);
  void ArmTickerLocked(TimeMs now) DRAY_REQUIRES(mu_);
  void OnTick();
  // Ends a lease wait whose caller went away, if it still waits.
  void AbandonWait(std::uint64_t waiter_id) DRAY_EXCLUDES(mu_);
  void SchedulePurge();
  void Purge();
  void PurgeWorkflows(TimeMs cutoff) DRAY_EXCLUDES(mu_);
  void SubmitWorkflowLocked(WorkflowSpec spec, const std::map<std::string, Task>& finished,
                            Callback<WorkflowOutcome> done) DRAY_REQUIRES(mu_);
  // Reads a task that is not live: from the store, after a barrier if its
  // committed row still looks live (a terminal commit is in flight).
  void ReadStored(const std::string& ns, const std::string& id, Callback<Task> done);
  // Retries or cancels a task that is not live, from its committed row.
  void ActOnStored(const std::string& ns, const std::string& id, bool retry, Callback<Task> done);
  Status AcceptingLocked() const DRAY_REQUIRES(mu_);
  // Heartbeat, complete and fail: Mutate, telling a stale call on a
  // finished task from an unknown id.
  template <typename T>
  void WorkerCall(const std::string& ns, const std::string& id, const Step<T>& step,
                  Callback<T> done) DRAY_EXCLUDES(mu_);

  boost::asio::io_context& ioc_;
  Store* const store_;
  Clock* const clock_;
  DiskGuard* const disk_;
  std::atomic<std::uint64_t> refused_overload_{0};
  const ServerConfig config_;
  CommitPipeline pipeline_;

  mutable Mutex mu_;
  Engine engine_ DRAY_GUARDED_BY(mu_);
  bool stopped_ DRAY_GUARDED_BY(mu_) = false;
  // Every long-poll waiter the service has; a lease waiter's id is also
  // its request's id in the engine.
  WaitList<LeaseWaiter> lease_waiters_ DRAY_GUARDED_BY(mu_);
  WaitList<TaskWaiter> task_waiters_ DRAY_GUARDED_BY(mu_);          // keyed by task id
  WaitList<WorkflowWaiter> workflow_waiters_ DRAY_GUARDED_BY(mu_);  // keyed by workflow id
  boost::asio::steady_timer ticker_ DRAY_GUARDED_BY(mu_);
  TimeMs ticker_at_ DRAY_GUARDED_BY(mu_) = 0;
  boost::asio::steady_timer purge_timer_ DRAY_GUARDED_BY(mu_);
  const std::shared_ptr<ChangeFeed> feed_;
  boost::asio::steady_timer heartbeat_timer_ DRAY_GUARDED_BY(mu_);
  void ArmHeartbeat() DRAY_REQUIRES(mu_);
};

// The templates of the mutation path, here so that every part of the service
// (task_service.cc, event_service.cc) instantiates them.

template <typename T>
Status TaskService::MutateLocked(Admit admit, const Step<T>& step, OnDurable<T> then) {
  if (Status s = AcceptingLocked(); !s.ok()) return s;
  if (admit == Admit::kSubmit) DRAY_RETURN_IF_ERROR(Admission());
  PendingOutput out;
  StatusOr<T> r = step(engine_, clock_->NowMs(), out.get());
  if (!r.ok()) {
    CommitLocked(out, nullptr);
    return r.status();
  }
  CommitLocked(out, [then = std::move(then), value = std::move(*r)](const Status& s) mutable {
    then(s, std::move(value));
  });
  return Status::Ok();
}

template <typename T>
void TaskService::Mutate(Admit admit, const Step<T>& step, Callback<T> done) {
  Status s;
  {
    MutexLock lock(&mu_);
    s = MutateLocked<T>(admit, step, [done](const Status& c, T value) {
      if (c.ok()) {
        done(std::move(value));
      } else {
        done(c);
      }
    });
  }
  if (!s.ok()) done(s);
}

}  // namespace dray
