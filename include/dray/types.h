// The task model shared by the server, the C++ client and the worker runtime.
//
// Times are milliseconds since the Unix epoch (UTC) in memory and RFC 3339 UTC
// strings on the wire. JSON values (payload, result, labels) are held as their
// serialized text so that they pass through Dray untouched.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dray {

using TimeMs = std::int64_t;

// Task states. The numeric values are written to disk and never renumbered.
enum class TaskState : std::uint8_t {
  kScheduled = 1,  // waiting for run_at (first run or a retry's backoff)
  kBlocked = 2,    // waiting for dependencies
  kReady = 3,      // may be leased now
  kRunning = 4,    // leased by a worker
  kSucceeded = 5,  // terminal
  kFailed = 6,     // terminal
  kCancelled = 7,  // terminal
};

std::string_view TaskStateName(TaskState s);
std::optional<TaskState> ParseTaskState(std::string_view name);
bool IsTerminal(TaskState s);

// How an attempt ended. Values are written to disk and never renumbered.
enum class AttemptOutcome : std::uint8_t {
  kRunning = 0,
  kSucceeded = 1,
  kFailed = 2,     // the worker reported failure (or its handler threw)
  kExpired = 3,    // the lease ran out without a heartbeat
  kTimedOut = 4,   // the attempt ran past the task's timeout_ms
  kCancelled = 5,  // cancelled while running
};

std::string_view AttemptOutcomeName(AttemptOutcome o);
std::optional<AttemptOutcome> ParseAttemptOutcome(std::string_view name);

// What a task does when a task it depends on ends failed or cancelled.
// Values are written to disk and never renumbered.
enum class DepFailure : std::uint8_t {
  kCancel = 0,    // it is cancelled too (and so, in turn, its dependents)
  kContinue = 1,  // it runs anyway, as if the dependency had succeeded
};

std::string_view DepFailureName(DepFailure p);
std::optional<DepFailure> ParseDepFailure(std::string_view name);

// Exponential backoff between attempts: the n-th retry waits
// min(max_ms, initial_ms * multiplier^(n-1)), less a random part of up to
// `jitter` (0..1) of it, so that retries of many tasks spread out.
struct Backoff {
  std::int64_t initial_ms = 1000;
  std::int64_t max_ms = 3'600'000;
  double multiplier = 2.0;
  double jitter = 0.2;
  friend bool operator==(const Backoff&, const Backoff&) = default;
};

// ---------------------------------------------------------------- placement

// A test on a worker's labels (docs/placement.md).
enum class SelectorOp : std::uint8_t {
  kEquals = 0,     // the label is values[0]
  kIn = 1,         // the label is one of values
  kNotIn = 2,      // the label is absent or none of values
  kExists = 3,     // the label is set (any value)
  kNotExists = 4,  // the label is not set
};

std::string_view SelectorOpName(SelectorOp op);
std::optional<SelectorOp> ParseSelectorOp(std::string_view name);

struct LabelSelector {
  std::string key;
  SelectorOp op = SelectorOp::kEquals;
  std::vector<std::string> values;
  bool Matches(const std::map<std::string, std::string>& labels) const;
  friend bool operator==(const LabelSelector&, const LabelSelector&) = default;
};

// Soft affinity: among the workers a task may go to, one whose labels match
// more preference weight is chosen first.
struct LabelPreference {
  LabelSelector selector;
  std::int32_t weight = 1;  // 1..1000
  friend bool operator==(const LabelPreference&, const LabelPreference&) = default;
};

// Where a task may run and what it takes there. A task with any of these
// runs only on a registered worker (docs/placement.md).
struct Placement {
  // Resources it holds while an attempt runs: "cpu" (millicores),
  // "memory_mb", "gpu" (count), or any custom one. Taken at lease, given
  // back when the attempt ends, whatever the way.
  std::map<std::string, std::int64_t> resources;
  std::vector<LabelSelector> require;   // all must match
  std::vector<LabelPreference> prefer;  // soft
  // Tasks with the same affinity key go to the same worker while it lives.
  std::string affinity_key;
  // A broadcast copy: the worker it was made for (while that worker lives,
  // only it may run it), its shard index (0-based) and the shard count.
  std::string worker;
  std::int32_t shard_index = 0;
  std::int32_t shard_total = 0;
  bool empty() const {
    return resources.empty() && require.empty() && prefer.empty() && affinity_key.empty() &&
           worker.empty() && shard_total == 0;
  }
  friend bool operator==(const Placement&, const Placement&) = default;
};

// How a queue chooses among the workers a task could go to.
enum class PlacementPolicy : std::uint8_t {
  kBinpack = 0,  // the busiest worker that fits: keeps others free for large tasks
  kSpread = 1,   // the least busy: spreads load and failures
};

std::string_view PlacementPolicyName(PlacementPolicy p);
std::optional<PlacementPolicy> ParsePlacementPolicy(std::string_view name);

// What a producer submits. Unset optionals take the queue's defaults.
struct TaskSpec {
  std::string type;                   // required: the handler name
  std::string ns = "default";         // namespace
  std::string queue = "default";
  std::string payload = "null";       // JSON text
  std::int32_t priority = 0;          // lower runs first
  std::optional<TimeMs> run_at;       // absolute start time, or
  std::optional<std::int64_t> delay_ms;  // relative to acceptance
  std::optional<std::int32_t> max_attempts;
  std::optional<Backoff> backoff;
  std::optional<std::int64_t> timeout_ms;  // per attempt; 0 = none
  std::optional<std::int64_t> lease_ms;    // lease duration override
  std::string key;                    // idempotency key; empty = none
  std::map<std::string, std::string> labels;
  // Tasks of one queue that share a concurrency key run at most
  // `concurrency_limit` at a time (unset: the queue's key_concurrency, by
  // default 1), and start in submit order: with a limit of 1 the key is
  // serial, each task starting only once the one before it is terminal,
  // retries included. See docs/limits.md.
  std::string concurrency_key;
  std::optional<std::int32_t> concurrency_limit;
  Placement placement;  // resources, label selectors, affinity
  friend bool operator==(const TaskSpec&, const TaskSpec&) = default;
};

struct Attempt {
  std::int32_t number = 0;  // 1-based
  std::string worker;
  TimeMs started_at = 0;
  TimeMs ended_at = 0;  // 0 while running
  AttemptOutcome outcome = AttemptOutcome::kRunning;
  std::string error;
  friend bool operator==(const Attempt&, const Attempt&) = default;
};

// A task as stored and as returned by the API.
struct Task {
  std::string id;  // UUIDv7: sorts by creation time
  std::string ns = "default";
  std::string queue = "default";
  std::string type;
  std::string payload = "null";  // JSON text
  std::int32_t priority = 0;
  TimeMs run_at = 0;  // when it becomes (or became) ready
  std::int32_t max_attempts = 3;
  Backoff backoff;
  std::int64_t timeout_ms = 0;  // 0 = no per-attempt timeout
  std::int64_t lease_ms = 0;    // 0 = queue default
  std::string key;
  std::map<std::string, std::string> labels;
  std::string concurrency_key;         // see TaskSpec
  std::int32_t concurrency_limit = 0;  // 0 = the queue's key_concurrency
  Placement placement;
  // Dependencies: the task is blocked until each of these (task ids) has
  // succeeded, or has ended otherwise and on_dep_failure is kContinue.
  std::vector<std::string> depends_on;
  DepFailure on_dep_failure = DepFailure::kCancel;
  std::string workflow;  // the workflow's id; empty = none
  std::string node;      // the task's name within its workflow

  TaskState state = TaskState::kReady;
  std::int32_t attempts = 0;  // attempts started so far
  std::string result;         // JSON text; empty = none yet
  std::string error;          // last error message; empty = none
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  TimeMs finished_at = 0;     // 0 until terminal

  // The current (or last) lease. The token only grows across the task's life.
  std::uint64_t lease_token = 0;
  TimeMs lease_expires_at = 0;
  std::string worker;
  bool cancel_requested = false;

  // Submit order: breaks priority ties; assigned by the server, monotonic.
  std::uint64_t seq = 0;

  std::vector<Attempt> history;

  // Not stored: why a live task that is not running waits, as the engine
  // sees it when the task is read (empty for running and finished tasks).
  // `wait_reason` is a code (see WaitReason in engine.h), `wait_detail` says
  // it in words with the numbers behind it.
  std::string wait_reason;
  std::string wait_detail;

  friend bool operator==(const Task&, const Task&) = default;
};

// The lease a worker holds on a task.
struct Lease {
  std::string token;   // decimal fencing token, opaque to workers
  TimeMs expires_at = 0;
};

// What a leased task gets of a task it depends on.
struct ParentResult {
  std::string name;  // its node name in the same workflow, else its id
  std::string id;
  TaskState state = TaskState::kSucceeded;
  std::string result;  // JSON text; empty = none
  friend bool operator==(const ParentResult&, const ParentResult&) = default;
};

struct LeasedTask {
  Task task;
  Lease lease;
  std::vector<ParentResult> parents;  // one per dependency, in depends_on order
  // The GPU devices of the leasing worker given to this attempt (when it
  // registered device ids and the task asks for "gpu").
  std::vector<std::string> gpu_devices;
};

// One copy of a broadcast task (POST /v1/tasks/broadcast).
struct BroadcastCopy {
  std::string id;
  std::string worker;  // the worker it was made for
  std::int32_t shard_index = 0;
  bool created = true;  // false: an idempotency key matched an earlier broadcast
};

// ---------------------------------------------------------------- schedules

// What to do with the ticks a schedule missed while the server was down or
// the schedule paused. Values are written to disk and never renumbered.
enum class MisfirePolicy : std::uint8_t {
  kSkip = 0,  // none of them: the next tick in the future only
  kOnce = 1,  // one run now for all of them together
  kAll = 2,   // every one, oldest first, up to max_catchup (the newest kept)
};

// What a tick does while the previous run's task has not finished. Values
// are written to disk and never renumbered.
enum class OverlapPolicy : std::uint8_t {
  kAllow = 0,           // start another run beside it
  kSkip = 1,            // let this tick go
  kBufferOne = 2,       // run once the previous ends (one such run at most)
  kCancelPrevious = 3,  // cancel the previous run, then start this one
};

std::string_view MisfirePolicyName(MisfirePolicy p);
std::optional<MisfirePolicy> ParseMisfirePolicy(std::string_view name);
std::string_view OverlapPolicyName(OverlapPolicy p);
std::optional<OverlapPolicy> ParseOverlapPolicy(std::string_view name);

// A schedule as submitted: a task template fired by a cron expression in a
// time zone, or every interval_ms.
struct ScheduleSpec {
  std::string ns = "default";
  // 1..128 of [A-Za-z0-9_.:-], unique in the namespace; empty on create:
  // the server makes one (a UUIDv7).
  std::string id;
  std::string name;  // free text for people
  std::string cron;              // either this...
  std::string timezone = "UTC";  // ...in this zone,
  std::int64_t interval_ms = 0;  // or this
  TaskSpec task;                 // what each tick submits (no run_at, no key)
  MisfirePolicy misfire = MisfirePolicy::kOnce;
  OverlapPolicy overlap = OverlapPolicy::kAllow;
  std::int64_t jitter_ms = 0;
  std::optional<TimeMs> start_at;
  std::optional<TimeMs> end_at;
  bool paused = false;
  std::int32_t max_catchup = 100;  // kAll's bound
  friend bool operator==(const ScheduleSpec&, const ScheduleSpec&) = default;
};

// A schedule as stored: its spec and where its ticks have got to. A tick
// is a nominal fire time (before the jitter); each tick is handled once:
// fired (its task committed with the schedule's new last_tick), let go by
// the misfire or overlap policy (counted in `skipped`), or buffered.
struct Schedule {
  ScheduleSpec spec;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  TimeMs last_tick = 0;       // the newest tick handled; later ones are ahead
  TimeMs last_fired_at = 0;   // when a tick last submitted a task
  std::string last_task;      // that task's id: the run overlap looks at
  TimeMs buffered_tick = 0;   // buffer_one: a tick waiting for last_task to end
  std::int64_t fired = 0;     // ticks that submitted a task
  std::int64_t skipped = 0;   // ticks let go (misfire, overlap, bound)
  // Not stored: the next fire times (jitter included) when read; empty
  // while paused or past the end.
  std::vector<TimeMs> next_fire_times;
  friend bool operator==(const Schedule&, const Schedule&) = default;
};

// ---------------------------------------------------------------- events

// A named fact from outside (an order was paid, a file landed), recorded
// durably; triggers on its name submit tasks in the same commit.
struct EventSpec {
  std::string ns = "default";
  std::string id;    // de-duplication: an id seen within the window is not fired again; empty = a UUIDv7
  std::string name;  // what triggers match
  std::string payload = "null";  // JSON text
};

struct Event {
  std::string ns = "default";
  std::string id;
  std::string name;
  std::string payload = "null";  // JSON text
  TimeMs created_at = 0;
  std::vector<std::string> tasks;  // the tasks its triggers submitted
  friend bool operator==(const Event&, const Event&) = default;
};

// A trigger submits a task from its template when an event of its name
// arrives (and its payload matches), or when a task of its queue and type
// ends in one of its states. The task's payload is {"input": <template
// payload>, "event": {...}} or {"input": ..., "source": {<the task>}}.
struct TriggerSpec {
  std::string ns = "default";
  std::string id;    // 1..128 of [A-Za-z0-9_.:-]; empty on create: a UUIDv7
  std::string name;  // free text
  // On an event: its name, and fields its payload must hold, as
  // (dotted path, JSON text of the value) pairs compared for equality.
  std::string event;
  std::vector<std::pair<std::string, std::string>> match;
  // Or on a task's outcome: of this queue and type (empty: any), ending in
  // one of `states` (terminal ones).
  bool on_task = false;
  std::string task_queue;
  std::string task_type;
  std::vector<TaskState> task_states;
  TaskSpec task;  // what it submits (no run_at, no key, no namespace)
  bool paused = false;
  friend bool operator==(const TriggerSpec&, const TriggerSpec&) = default;
};

struct Trigger {
  TriggerSpec spec;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  std::int64_t fired = 0;  // not stored: since the server started
  friend bool operator==(const Trigger&, const Trigger&) = default;
};

// ---------------------------------------------------------------- workers

// A worker that registers (issue 7): what it has and what it serves. A
// registered worker heartbeats; one silent past the grace is declared dead
// and its running tasks are released at once, not at their lease's end.
struct WorkerSpec {
  std::string ns = "default";
  std::string id;  // the name it leases under: 1..128 of [A-Za-z0-9_.:-]
  // Resources: "cpu" (millicores), "memory_mb", "gpu" (count), or any
  // custom one ("licenses": 3).
  std::map<std::string, std::int64_t> capacity;
  std::vector<std::string> gpu_devices;  // optional, e.g. {"0", "1"}
  std::map<std::string, std::string> labels;
  std::vector<std::string> queues;
  friend bool operator==(const WorkerSpec&, const WorkerSpec&) = default;
};

struct WorkerInfo {
  WorkerSpec spec;
  TimeMs registered_at = 0;
  TimeMs last_seen = 0;
  std::vector<std::string> running;  // ids of the tasks it holds, in id order
  std::map<std::string, std::int64_t> in_use;  // resources its running tasks hold
  std::vector<std::string> gpu_devices_in_use;
  // A large task it is held for (its capacity is kept for it; smaller tasks
  // may still use what the task does not need, or run if they end in time).
  std::string reserved_for;
};

// ---------------------------------------------------------------- workflows

// Values are written to disk and never renumbered.
enum class WorkflowState : std::uint8_t {
  kRunning = 1,    // some task has not finished
  kSucceeded = 2,  // every task succeeded
  kFailed = 3,     // every task finished, and one failed or was cancelled
  kCancelled = 4,  // cancelled by request (every task finished since)
};

std::string_view WorkflowStateName(WorkflowState s);
std::optional<WorkflowState> ParseWorkflowState(std::string_view name);

// One task of a workflow, as submitted.
struct WorkflowNodeSpec {
  std::string name;  // unique within the workflow
  TaskSpec task;     // its namespace is the workflow's
  // Names of other tasks in this workflow, or ids of existing tasks.
  std::vector<std::string> depends_on;
  std::optional<DepFailure> on_failure;  // unset: the workflow's
};

struct WorkflowSpec {
  std::string ns = "default";
  std::string name;  // free text for people; need not be unique
  DepFailure on_failure = DepFailure::kCancel;
  std::vector<WorkflowNodeSpec> tasks;

  // Adds a task; returns it for further settings (on_failure).
  WorkflowNodeSpec& Add(std::string task_name, TaskSpec task,
                        std::vector<std::string> depends_on = {}) {
    tasks.push_back(WorkflowNodeSpec{std::move(task_name), std::move(task),
                                     std::move(depends_on), std::nullopt});
    return tasks.back();
  }
};

// A workflow as stored. Its tasks are ordinary tasks with Task::workflow set.
struct Workflow {
  std::string id;  // UUIDv7
  std::string ns = "default";
  std::string name;
  WorkflowState state = WorkflowState::kRunning;
  DepFailure on_failure = DepFailure::kCancel;
  std::int32_t tasks = 0;  // how many
  bool cancel_requested = false;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  TimeMs finished_at = 0;  // 0 while running
  friend bool operator==(const Workflow&, const Workflow&) = default;
};

// Per-queue settings. Unset fields in a PATCH leave the value as it is.
struct QueueSettings {
  bool paused = false;
  std::int64_t lease_ms = 30'000;  // default lease duration
  std::int32_t max_attempts = 3;   // default for tasks that do not say
  Backoff backoff;                 // default for tasks that do not say
  // Limits, enforced across all workers (docs/limits.md):
  std::int32_t concurrency = 0;      // tasks of the queue running at once; 0 = no limit
  std::int32_t key_concurrency = 1;  // per concurrency key, unless a task says
  double rate = 0;                   // task starts per second; 0 = no limit
  std::int32_t burst = 0;            // starts allowed at once; 0 = max(1, ceil(rate))
  // Fairness: a worker leasing from several queues gets each in proportion
  // to its weight (1..1000) while they all have work.
  std::int32_t weight = 1;
  // Placement among the registered workers asking for work at once:
  // binpack (the busiest that fits) or spread (the least busy).
  PlacementPolicy placement = PlacementPolicy::kBinpack;
  // The bucket size in force: `burst`, or max(1, ceil(rate)) when unset.
  double effective_burst() const {
    if (burst > 0) return burst;
    const double whole = static_cast<double>(static_cast<std::int64_t>(rate));
    return whole < rate ? whole + 1 : (whole < 1 ? 1 : whole);
  }
  friend bool operator==(const QueueSettings&, const QueueSettings&) = default;
};

struct QueueInfo {
  std::string ns = "default";
  std::string name;
  QueueSettings settings;
  std::map<TaskState, std::int64_t> counts;  // live counts by state
};

}  // namespace dray
