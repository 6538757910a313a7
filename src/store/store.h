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

#include "core/records.h"
#include "dray/status.h"
#include "dray/types.h"

namespace dray {

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

// A finished task old enough to purge, with what the engine's counts need.
struct ExpiredTask {
  std::string ns;
  std::string id;
  std::string queue;
  TaskState state = TaskState::kSucceeded;
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies `mutations` (core/records.h) in order in one transaction and
  // syncs it to stable storage before returning OK. On any failure nothing of the batch is
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

  // Requests sent to a database server and answered, since the store was
  // opened (each pipeline sync, each query and FETCH): 0 for an embedded
  // store. /metrics shows it as dray_store_round_trips_total.
  virtual std::uint64_t round_trips() const { return 0; }
};

}  // namespace dray
