// The store: the durable source of truth behind the engine.
//
// Threading: every method may be called from any thread. Commit() calls are
// serialized inside the store (one writer); reads may run beside a commit.
//
// Failure: after a Commit() fails (I/O error, fsync error, disk full), the
// store is "broken": every later Commit() returns Unavailable at once without
// touching the disk, and health() reports the first error, until the process
// restarts (leveldb's bg_error_). Reads keep working where they can.
//
// Callbacks passed to the Scan* methods run on the calling thread while the
// store holds its read lock: they must not call back into the store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dray/status.h"
#include "dray/types.h"

namespace dray {

struct QueueRecord {
  std::string ns;
  std::string name;
  QueueSettings settings;
};

// One change the engine wants made durable. A batch of mutations is applied
// in order, in one transaction.
struct Mutation {
  enum class Kind : std::uint8_t {
    kPutTask,     // insert or replace the whole task row (history included)
    kDeleteTask,  // remove one task (retention purge)
    kPutQueue,    // insert or replace a queue's settings
    // A task already stored changed state: write the fields a transition
    // may change (run_at, state, attempts, result, error, updated_at,
    // finished_at, the lease, cancel_requested, history); the rest of the
    // row (type, payload, options, key, labels, seq) is left as it is.
    // Cheaper than kPutTask: the row is not rewritten from scratch and the
    // indexes on unchanged columns are not touched. If no row is there, the
    // whole task is written as by kPutTask.
    kUpdateTask,
    kPutWorkflow,     // insert or replace a workflow's row
    kDeleteWorkflow,  // remove a workflow's row (retention purge)
    kPutSchedule,     // insert or replace a schedule (its spec and its ticks)
    kDeleteSchedule,  // remove a schedule
    kPutEvent,        // record an event (with the tasks it fired)
    kDeleteEventsBefore,  // retention: up to 10,000 events created before `at`
    kPutTrigger,      // insert or replace a trigger
    kDeleteTrigger,   // remove a trigger
  };
  Kind kind = Kind::kPutTask;
  std::shared_ptr<const Task> task;  // kPutTask, kUpdateTask
  std::string ns;                    // kDelete{Task,Workflow,Schedule,Trigger}
  std::string id;                    // kDelete{Task,Workflow,Schedule,Trigger}
  QueueRecord queue;                 // kPutQueue
  std::shared_ptr<const Workflow> workflow;  // kPutWorkflow
  std::shared_ptr<const Schedule> schedule;  // kPutSchedule
  std::shared_ptr<const Event> event;        // kPutEvent
  std::shared_ptr<const Trigger> trigger;    // kPutTrigger
  TimeMs at = 0;                             // kDeleteEventsBefore

  static Mutation PutTask(std::shared_ptr<const Task> t) {
    Mutation m;
    m.kind = Kind::kPutTask;
    m.task = std::move(t);
    return m;
  }
  static Mutation UpdateTask(std::shared_ptr<const Task> t) {
    Mutation m;
    m.kind = Kind::kUpdateTask;
    m.task = std::move(t);
    return m;
  }
  static Mutation DeleteTask(std::string ns, std::string id) {
    Mutation m;
    m.kind = Kind::kDeleteTask;
    m.ns = std::move(ns);
    m.id = std::move(id);
    return m;
  }
  static Mutation PutQueue(QueueRecord q) {
    Mutation m;
    m.kind = Kind::kPutQueue;
    m.queue = std::move(q);
    return m;
  }
  static Mutation PutWorkflow(std::shared_ptr<const Workflow> w) {
    Mutation m;
    m.kind = Kind::kPutWorkflow;
    m.workflow = std::move(w);
    return m;
  }
  static Mutation PutSchedule(std::shared_ptr<const Schedule> s) {
    Mutation m;
    m.kind = Kind::kPutSchedule;
    m.schedule = std::move(s);
    return m;
  }
  static Mutation DeleteSchedule(std::string ns, std::string id) {
    Mutation m;
    m.kind = Kind::kDeleteSchedule;
    m.ns = std::move(ns);
    m.id = std::move(id);
    return m;
  }
  static Mutation PutEvent(std::shared_ptr<const Event> e) {
    Mutation m;
    m.kind = Kind::kPutEvent;
    m.event = std::move(e);
    return m;
  }
  static Mutation DeleteEventsBefore(TimeMs cutoff) {
    Mutation m;
    m.kind = Kind::kDeleteEventsBefore;
    m.at = cutoff;
    return m;
  }
  static Mutation PutTrigger(std::shared_ptr<const Trigger> t) {
    Mutation m;
    m.kind = Kind::kPutTrigger;
    m.trigger = std::move(t);
    return m;
  }
  static Mutation DeleteTrigger(std::string ns, std::string id) {
    Mutation m;
    m.kind = Kind::kDeleteTrigger;
    m.ns = std::move(ns);
    m.id = std::move(id);
    return m;
  }
  static Mutation DeleteWorkflow(std::string ns, std::string id) {
    Mutation m;
    m.kind = Kind::kDeleteWorkflow;
    m.ns = std::move(ns);
    m.id = std::move(id);
    return m;
  }
};

// A filter for ListTasks. Empty strings and unset optionals match everything.
struct TaskQuery {
  std::string ns = "default";
  std::string queue;
  std::string type;
  std::optional<TaskState> state;
  std::size_t limit = 100;  // at most this many tasks per page
  std::string cursor;       // opaque: the next_cursor of the previous page
  bool newest_first = true; // order by id descending (creation time)
  // A page also ends once its payloads and results add up to this many
  // bytes (it always holds at least one task), so that a page of large
  // tasks stays a bounded answer. 0 = no bound.
  std::size_t max_bytes = 0;
};

struct TaskPage {
  std::vector<Task> tasks;
  std::string next_cursor;  // empty when there is nothing more
};

// A filter for ListWorkflows, newest first.
struct WorkflowQuery {
  std::string ns = "default";
  std::optional<WorkflowState> state;
  std::string name;         // exact match; empty = any
  std::size_t limit = 100;  // clamped to 1..1000
  std::string cursor;       // the next_cursor of the previous page
};

struct WorkflowPage {
  std::vector<Workflow> workflows;
  std::string next_cursor;
};

struct StateCount {
  std::string ns;
  std::string queue;
  TaskState state;
  std::int64_t count;
};

// A finished task old enough to purge, with what the engine's counts need.
struct ExpiredTask {
  std::string ns;
  std::string id;
  std::string queue;
  TaskState state = TaskState::kSucceeded;
};

// What recovery needs besides the live tasks.
struct StoreMarks {
  // The largest values ever committed, even if that task was purged since.
  std::uint64_t max_lease_token = 0;
  std::uint64_t max_seq = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies `mutations` in order in one transaction and syncs it to stable
  // storage before returning OK. On any failure nothing of the batch is
  // applied and the store becomes broken (see above).
  virtual Status Commit(std::span<const Mutation> mutations) = 0;

  // OK while the store accepts writes; otherwise the error that broke it.
  virtual Status health() const = 0;

  // A task by namespace and id: NotFound if there is none.
  virtual StatusOr<Task> GetTask(const std::string& ns, const std::string& id) = 0;

  // A page of tasks matching `query`, ordered by id.
  virtual StatusOr<TaskPage> ListTasks(const TaskQuery& query) = 0;

  // Calls `fn` for every task that is not terminal, in no particular order
  // (recovery).
  virtual Status ScanLiveTasks(const std::function<void(Task&&)>& fn) = 0;

  // Calls `fn(ns, key, id, created_at)` for every task with an idempotency
  // key created at or after `since` (recovery of the idempotency window).
  virtual Status ScanKeys(TimeMs since,
                          const std::function<void(const std::string& ns, const std::string& key,
                                                   const std::string& id, TimeMs created_at)>& fn) = 0;

  virtual StatusOr<std::vector<QueueRecord>> LoadQueues() = 0;
  virtual StatusOr<StoreMarks> LoadMarks() = 0;

  // Task counts by (namespace, queue, state) for terminal states only; the
  // engine knows the live ones.
  virtual StatusOr<std::vector<StateCount>> CountTerminal() = 0;

  // Ids (ns, id) of up to `limit` terminal tasks finished before `cutoff`,
  // oldest first: candidates for the retention purge, which deletes them
  // through Commit() like any other write. Tasks of a workflow are not
  // among them: they go with their workflow (FindExpiredWorkflows).
  virtual StatusOr<std::vector<ExpiredTask>> FindExpired(TimeMs cutoff, std::size_t limit) = 0;

  // --- Workflows.
  virtual StatusOr<Workflow> GetWorkflow(const std::string& ns, const std::string& id) = 0;
  virtual StatusOr<WorkflowPage> ListWorkflows(const WorkflowQuery& query) = 0;
  // Every task of a workflow, in submit order (seq).
  virtual StatusOr<std::vector<Task>> WorkflowTasks(const std::string& ns,
                                                    const std::string& id) = 0;
  // Workflows still running (recovery), each with the count of its tasks
  // that ended failed or cancelled.
  struct RunningWorkflow {
    Workflow workflow;
    std::int64_t failed_tasks = 0;
  };
  virtual StatusOr<std::vector<RunningWorkflow>> LoadRunningWorkflows() = 0;
  // Up to `limit` finished workflows (ns, id) finished before `cutoff`.
  virtual StatusOr<std::vector<std::pair<std::string, std::string>>> FindExpiredWorkflows(
      TimeMs cutoff, std::size_t limit) = 0;

  // --- Schedules: the engine holds them all; the store gives them back at
  // recovery (next_fire_times left empty).
  virtual StatusOr<std::vector<Schedule>> LoadSchedules() = 0;

  // --- Events and triggers.
  virtual StatusOr<Event> GetEvent(const std::string& ns, const std::string& id) = 0;
  // Calls `fn(ns, id, created_at)` for every event created at or after
  // `since` (recovery of the de-duplication window).
  virtual Status ScanEventIds(
      TimeMs since,
      const std::function<void(const std::string& ns, const std::string& id, TimeMs created_at)>&
          fn) = 0;
  // Whether an event was created before `cutoff` (retention has work).
  virtual StatusOr<bool> HasEventsBefore(TimeMs cutoff) = 0;
  virtual StatusOr<std::vector<Trigger>> LoadTriggers() = 0;
};

}  // namespace dray
