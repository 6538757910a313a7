// The task lifecycle: one pure transition function that every other part of
// Dray calls. Nothing else decides a task's next state.
//
//   (none) ─submit─► scheduled | blocked | ready      (see InitialState)
//   scheduled ─due─► ready          blocked ─deps_met─► ready
//   ready ─lease─► running          running ─heartbeat─► running
//   running ─complete─► succeeded
//   running ─fail | expire | timeout─► scheduled (attempts left, retryable:
//            backoff) | failed (none left, or not retryable)
//   running with cancel requested ─fail | expire | timeout─► cancelled
//   scheduled | blocked | ready ─cancel─► cancelled
//   running ─cancel─► running, cancel requested (the worker stops, then fails)
//   failed | cancelled ─retry─► ready (one more attempt is granted)
//   cancelled ─cancel─► cancelled (idempotent)
//
// Every other (state, event) pair is refused with FailedPrecondition and
// changes nothing; state_machine_test.cc walks the whole table.
#pragma once

#include <array>
#include <string_view>

#include "dray/status.h"
#include "dray/types.h"

namespace dray {

enum class TaskEvent : std::uint8_t {
  kDue,        // run_at reached
  kDepsMet,    // every dependency succeeded
  kLease,      // a worker takes the task
  kHeartbeat,  // the lease holder extends its lease
  kComplete,   // the lease holder reports success
  kFail,       // the lease holder reports failure
  kExpire,     // the lease ran out
  kTimeout,    // the attempt ran past timeout_ms
  kCancel,     // a client asks to cancel
  kRetry,      // a client asks to run a failed or cancelled task again
};

inline constexpr std::array<TaskEvent, 10> kAllTaskEvents = {
    TaskEvent::kDue,      TaskEvent::kDepsMet, TaskEvent::kLease,   TaskEvent::kHeartbeat,
    TaskEvent::kComplete, TaskEvent::kFail,    TaskEvent::kExpire,  TaskEvent::kTimeout,
    TaskEvent::kCancel,   TaskEvent::kRetry};

inline constexpr std::array<TaskState, 7> kAllTaskStates = {
    TaskState::kScheduled, TaskState::kBlocked,   TaskState::kReady,    TaskState::kRunning,
    TaskState::kSucceeded, TaskState::kFailed,    TaskState::kCancelled};

std::string_view TaskEventName(TaskEvent e);

// The state a newly submitted task starts in.
TaskState InitialState(bool has_unmet_deps, TimeMs run_at, TimeMs now);

struct EventInput {
  TaskEvent event;
  bool retryable = true;     // kFail: false = fail now whatever attempts are left
  double jitter_u = 0.5;     // uniform sample in [0, 1) for backoff jitter
};

// What a transition does to a task, decided by Decide and carried out by Apply.
struct Transition {
  TaskState next = TaskState::kReady;
  bool starts_attempt = false;         // lease: a new attempt and a new token
  bool extends_lease = false;          // heartbeat
  bool ends_attempt = false;           // the running attempt ends...
  AttemptOutcome attempt_outcome = AttemptOutcome::kRunning;  // ...like this
  bool requests_cancel = false;        // running task: ask the worker to stop
  bool grants_attempt = false;         // manual retry: allow one more attempt
  TimeMs run_at = 0;                   // next == kScheduled: when it is due
};

// Decides what `event` does to `task` at `now`. Pure. Refuses (with
// FailedPrecondition naming the state and the event) anything the table above
// does not allow.
StatusOr<Transition> Decide(const Task& task, const EventInput& event, TimeMs now);

// The details of an event that Apply writes into the task.
struct ApplyInput {
  TimeMs now = 0;
  std::string_view worker;         // kLease
  std::uint64_t lease_token = 0;   // kLease: must exceed task.lease_token
  TimeMs lease_expires_at = 0;     // kLease, kHeartbeat
  std::string_view result;         // kComplete, and optionally kFail: JSON text
  std::string_view error;          // kFail, kExpire, kTimeout, kCancel
};

// Carries out a transition decided by Decide on the same task. Pure.
void Apply(const Transition& t, const ApplyInput& in, Task* task);

// The delay before retry number `retry` (1-based), jitter drawn from u in [0,1).
std::int64_t BackoffDelayMs(const Backoff& b, std::int32_t retry, double u);

}  // namespace dray
