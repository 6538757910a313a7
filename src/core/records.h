// What the engine asks to be made durable, and what recovery gives back to
// it: plain records shared by the engine and every store, with no I/O and
// no encoding. How a store lays them out is the store's own business
// (docs/storage.md); the engine knows none of it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "dray/types.h"

namespace dray {

struct QueueRecord {
  std::string ns;
  std::string name;
  QueueSettings settings;
};

// The largest values ever committed, even if that task was purged since:
// recovery starts its counters above them.
struct StoreMarks {
  std::uint64_t max_lease_token = 0;
  std::uint64_t max_seq = 0;
};

// Finished tasks of one (namespace, queue) in one terminal state.
struct StateCount {
  std::string ns;
  std::string queue;
  TaskState state;
  std::int64_t count;
};

// One change to make durable, one record per kind. A batch of them is
// applied in order, in one transaction (Store::Commit). Records that carry
// a whole value share it (the engine keeps no reference to it after).
namespace mutation {

// Insert or replace the whole task row (history included).
struct PutTask {
  std::shared_ptr<const Task> task;
};
// A task already stored changed state: write the fields a transition may
// change (run_at, state, attempts, result, error, updated_at, finished_at,
// the lease, cancel_requested, history); the rest of the row (type,
// payload, options, key, labels, seq, flow, workflow) stays as it is. If no
// row is there, the whole task is written as by PutTask.
struct UpdateTask {
  std::shared_ptr<const Task> task;
};
// Remove one task (retention purge).
struct DeleteTask {
  std::string ns, id;
};
// Insert or replace a queue's settings.
struct PutQueue {
  QueueRecord queue;
};
struct PutWorkflow {
  std::shared_ptr<const Workflow> workflow;
};
// Remove a workflow's row (retention purge; its tasks go by DeleteTask).
struct DeleteWorkflow {
  std::string ns, id;
};
// Insert or replace a schedule: its spec and where its ticks have got to
// (next_fire_times is not stored).
struct PutSchedule {
  std::shared_ptr<const Schedule> schedule;
};
struct DeleteSchedule {
  std::string ns, id;
};
// Record an event with the tasks it fired.
struct PutEvent {
  std::shared_ptr<const Event> event;
};
// Retention: up to 10,000 events created before `cutoff`.
struct DeleteEventsBefore {
  TimeMs cutoff = 0;
};
// Insert or replace a trigger (`fired` is not stored).
struct PutTrigger {
  std::shared_ptr<const Trigger> trigger;
};
struct DeleteTrigger {
  std::string ns, id;
};

}  // namespace mutation

using Mutation =
    std::variant<mutation::PutTask, mutation::UpdateTask, mutation::DeleteTask, mutation::PutQueue,
                 mutation::PutWorkflow, mutation::DeleteWorkflow, mutation::PutSchedule,
                 mutation::DeleteSchedule, mutation::PutEvent, mutation::DeleteEventsBefore,
                 mutation::PutTrigger, mutation::DeleteTrigger>;

// The task a mutation writes (PutTask, UpdateTask); null for the others.
inline const std::shared_ptr<const Task>& TaskOf(const Mutation& m) {
  static const std::shared_ptr<const Task> kNone;
  if (const auto* p = std::get_if<mutation::PutTask>(&m)) return p->task;
  if (const auto* u = std::get_if<mutation::UpdateTask>(&m)) return u->task;
  return kNone;
}

// For std::visit over a Mutation with one lambda per kind.
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace dray
