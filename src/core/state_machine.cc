#include "core/state_machine.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace dray {

namespace {

// The value of an enum whose name is `name`, among `values`.
template <typename E>
std::optional<E> ByName(std::string_view name, std::initializer_list<E> values,
                        std::string_view (*name_of)(E)) {
  for (E v : values) {
    if (name_of(v) == name) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kScheduled: return "scheduled";
    case TaskState::kBlocked: return "blocked";
    case TaskState::kReady: return "ready";
    case TaskState::kRunning: return "running";
    case TaskState::kSucceeded: return "succeeded";
    case TaskState::kFailed: return "failed";
    case TaskState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<TaskState> ParseTaskState(std::string_view name) {
  for (TaskState s : kAllTaskStates) {
    if (TaskStateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view DepFailureName(DepFailure p) {
  return p == DepFailure::kContinue ? "continue" : "cancel";
}

std::optional<DepFailure> ParseDepFailure(std::string_view name) {
  return ByName(name, {DepFailure::kCancel, DepFailure::kContinue}, &DepFailureName);
}

std::string_view SelectorOpName(SelectorOp op) {
  switch (op) {
    case SelectorOp::kEquals: return "equals";
    case SelectorOp::kIn: return "in";
    case SelectorOp::kNotIn: return "not_in";
    case SelectorOp::kExists: return "exists";
    case SelectorOp::kNotExists: return "not_exists";
  }
  return "unknown";
}

std::optional<SelectorOp> ParseSelectorOp(std::string_view name) {
  return ByName(name,
                {SelectorOp::kEquals, SelectorOp::kIn, SelectorOp::kNotIn, SelectorOp::kExists,
                 SelectorOp::kNotExists},
                &SelectorOpName);
}

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  auto it = labels.find(key);
  const bool has = it != labels.end();
  const auto listed = [&] {
    return has && std::find(values.begin(), values.end(), it->second) != values.end();
  };
  switch (op) {
    case SelectorOp::kEquals: return has && !values.empty() && it->second == values.front();
    case SelectorOp::kIn: return listed();
    case SelectorOp::kNotIn: return !listed();
    case SelectorOp::kExists: return has;
    case SelectorOp::kNotExists: return !has;
  }
  return false;
}

std::string_view PlacementPolicyName(PlacementPolicy p) {
  return p == PlacementPolicy::kSpread ? "spread" : "binpack";
}

std::optional<PlacementPolicy> ParsePlacementPolicy(std::string_view name) {
  return ByName(name, {PlacementPolicy::kBinpack, PlacementPolicy::kSpread},
                &PlacementPolicyName);
}

std::string_view WorkflowStateName(WorkflowState s) {
  switch (s) {
    case WorkflowState::kRunning: return "running";
    case WorkflowState::kSucceeded: return "succeeded";
    case WorkflowState::kFailed: return "failed";
    case WorkflowState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<WorkflowState> ParseWorkflowState(std::string_view name) {
  return ByName(name, {WorkflowState::kRunning, WorkflowState::kSucceeded, WorkflowState::kFailed,
                       WorkflowState::kCancelled},
                &WorkflowStateName);
}

std::string_view MisfirePolicyName(MisfirePolicy p) {
  switch (p) {
    case MisfirePolicy::kSkip: return "skip";
    case MisfirePolicy::kOnce: return "once";
    case MisfirePolicy::kAll: return "all";
  }
  return "unknown";
}

std::optional<MisfirePolicy> ParseMisfirePolicy(std::string_view name) {
  return ByName(name, {MisfirePolicy::kSkip, MisfirePolicy::kOnce, MisfirePolicy::kAll},
                &MisfirePolicyName);
}

std::string_view OverlapPolicyName(OverlapPolicy p) {
  switch (p) {
    case OverlapPolicy::kAllow: return "allow";
    case OverlapPolicy::kSkip: return "skip";
    case OverlapPolicy::kBufferOne: return "buffer_one";
    case OverlapPolicy::kCancelPrevious: return "cancel_previous";
  }
  return "unknown";
}

std::optional<OverlapPolicy> ParseOverlapPolicy(std::string_view name) {
  return ByName(name, {OverlapPolicy::kAllow, OverlapPolicy::kSkip, OverlapPolicy::kBufferOne,
                       OverlapPolicy::kCancelPrevious},
                &OverlapPolicyName);
}

bool IsTerminal(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kFailed || s == TaskState::kCancelled;
}

std::string_view AttemptOutcomeName(AttemptOutcome o) {
  switch (o) {
    case AttemptOutcome::kRunning: return "running";
    case AttemptOutcome::kSucceeded: return "succeeded";
    case AttemptOutcome::kFailed: return "failed";
    case AttemptOutcome::kExpired: return "expired";
    case AttemptOutcome::kTimedOut: return "timed_out";
    case AttemptOutcome::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<AttemptOutcome> ParseAttemptOutcome(std::string_view name) {
  for (int i = 0; i <= 5; ++i) {
    auto o = static_cast<AttemptOutcome>(i);
    if (AttemptOutcomeName(o) == name) return o;
  }
  return std::nullopt;
}

std::string_view TaskEventName(TaskEvent e) {
  switch (e) {
    case TaskEvent::kDue: return "due";
    case TaskEvent::kDepsMet: return "deps_met";
    case TaskEvent::kLease: return "lease";
    case TaskEvent::kHeartbeat: return "heartbeat";
    case TaskEvent::kComplete: return "complete";
    case TaskEvent::kFail: return "fail";
    case TaskEvent::kExpire: return "expire";
    case TaskEvent::kTimeout: return "timeout";
    case TaskEvent::kCancel: return "cancel";
    case TaskEvent::kRetry: return "retry";
  }
  return "unknown";
}

TaskState InitialState(bool has_unmet_deps, TimeMs run_at, TimeMs now) {
  if (has_unmet_deps) return TaskState::kBlocked;
  return run_at > now ? TaskState::kScheduled : TaskState::kReady;
}

std::int64_t BackoffDelayMs(const Backoff& b, std::int32_t retry, double u) {
  double d = static_cast<double>(std::max<std::int64_t>(b.initial_ms, 0));
  double cap = static_cast<double>(std::max<std::int64_t>(b.max_ms, 0));
  for (std::int32_t i = 1; i < retry && d < cap; ++i) d *= std::max(b.multiplier, 1.0);
  d = std::min(d, cap);
  double jitter = std::clamp(b.jitter, 0.0, 1.0);
  d -= d * jitter * std::clamp(u, 0.0, 1.0);
  return static_cast<std::int64_t>(std::llround(d));
}

namespace {

Status Refuse(const Task& task, TaskEvent e) {
  return FailedPrecondition("task " + task.id + " is " + std::string(TaskStateName(task.state)) +
                            "; cannot " + std::string(TaskEventName(e)));
}

// A running attempt that did not succeed: cancelled if a cancel was asked for,
// retried after backoff if attempts and the error allow, failed otherwise.
Transition EndFailedAttempt(const Task& task, AttemptOutcome outcome, bool retryable,
                            double jitter_u, TimeMs now) {
  Transition t;
  t.ends_attempt = true;
  if (task.cancel_requested) {
    t.next = TaskState::kCancelled;
    t.attempt_outcome = AttemptOutcome::kCancelled;
    return t;
  }
  t.attempt_outcome = outcome;
  if (retryable && task.attempts < task.max_attempts) {
    t.next = TaskState::kScheduled;
    t.run_at = now + BackoffDelayMs(task.backoff, task.attempts, jitter_u);
  } else {
    t.next = TaskState::kFailed;
  }
  return t;
}

}  // namespace

StatusOr<Transition> Decide(const Task& task, const EventInput& in, TimeMs now) {
  Transition t;
  const TaskState s = task.state;
  switch (in.event) {
    case TaskEvent::kDue:
      if (s != TaskState::kScheduled) break;
      t.next = TaskState::kReady;
      return t;
    case TaskEvent::kDepsMet:
      if (s != TaskState::kBlocked) break;
      t.next = TaskState::kReady;
      return t;
    case TaskEvent::kLease:
      if (s != TaskState::kReady) break;
      t.next = TaskState::kRunning;
      t.starts_attempt = true;
      return t;
    case TaskEvent::kHeartbeat:
      if (s != TaskState::kRunning) break;
      t.next = TaskState::kRunning;
      t.extends_lease = true;
      return t;
    case TaskEvent::kComplete:
      if (s != TaskState::kRunning) break;
      t.next = TaskState::kSucceeded;
      t.ends_attempt = true;
      t.attempt_outcome = AttemptOutcome::kSucceeded;
      return t;
    case TaskEvent::kFail:
      if (s != TaskState::kRunning) break;
      return EndFailedAttempt(task, AttemptOutcome::kFailed, in.retryable, in.jitter_u, now);
    case TaskEvent::kExpire:
      if (s != TaskState::kRunning) break;
      return EndFailedAttempt(task, AttemptOutcome::kExpired, true, in.jitter_u, now);
    case TaskEvent::kTimeout:
      if (s != TaskState::kRunning) break;
      return EndFailedAttempt(task, AttemptOutcome::kTimedOut, true, in.jitter_u, now);
    case TaskEvent::kCancel:
      if (s == TaskState::kScheduled || s == TaskState::kBlocked || s == TaskState::kReady ||
          s == TaskState::kCancelled) {
        t.next = TaskState::kCancelled;
        return t;
      }
      if (s == TaskState::kRunning) {
        t.next = TaskState::kRunning;
        t.requests_cancel = true;
        return t;
      }
      break;
    case TaskEvent::kRetry:
      if (s != TaskState::kFailed && s != TaskState::kCancelled) break;
      t.next = TaskState::kReady;
      t.grants_attempt = true;
      return t;
  }
  return Refuse(task, in.event);
}

void Apply(const Transition& t, const ApplyInput& in, Task* task) {
  const TaskState prev = task->state;
  if (t.ends_attempt && !task->history.empty()) {
    Attempt& a = task->history.back();
    a.ended_at = in.now;
    a.outcome = t.attempt_outcome;
    if (t.attempt_outcome != AttemptOutcome::kSucceeded) a.error = std::string(in.error);
  }
  if (t.ends_attempt) {
    task->lease_expires_at = 0;
    if (t.attempt_outcome == AttemptOutcome::kSucceeded) {
      task->result = std::string(in.result);
      task->error.clear();
    } else {
      task->error = std::string(in.error);
      // A failed attempt may leave output behind (a command's exit code and
      // output); it replaces the previous attempt's.
      if (!in.result.empty()) task->result = std::string(in.result);
    }
  }
  if (t.starts_attempt) {
    task->attempts += 1;
    task->lease_token = std::max(task->lease_token + 1, in.lease_token);
    task->lease_expires_at = in.lease_expires_at;
    task->worker = std::string(in.worker);
    task->cancel_requested = false;
    Attempt a;
    a.number = task->attempts;
    a.worker = task->worker;
    a.started_at = in.now;
    task->history.push_back(std::move(a));
  }
  if (t.extends_lease) task->lease_expires_at = in.lease_expires_at;
  if (t.requests_cancel) task->cancel_requested = true;
  if (t.grants_attempt) {
    task->max_attempts = std::max(task->max_attempts, task->attempts + 1);
    task->cancel_requested = false;
    task->finished_at = 0;
    task->run_at = in.now;
  }
  if (t.next == TaskState::kScheduled) task->run_at = t.run_at;
  if (t.next == TaskState::kCancelled && prev != TaskState::kCancelled && !in.error.empty() &&
      !t.ends_attempt) {
    task->error = std::string(in.error);
  }
  task->state = t.next;
  if (IsTerminal(t.next) && !IsTerminal(prev)) task->finished_at = in.now;
  if (t.next != prev || t.starts_attempt || t.ends_attempt || t.requests_cancel ||
      t.extends_lease) {
    task->updated_at = in.now;
  }
}

}  // namespace dray
