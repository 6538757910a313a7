// Engine-internal: a live task, a queue, a schedule, a trigger and a
// registered worker as the engine holds them (engine.cc and the files
// beside it need the whole types).
#pragma once

#include <array>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/schedule_time.h"
#include "engine/engine.h"

namespace dray {

// A key unique across namespaces: ns + '\0' + key (idempotency keys, event ids).
inline std::string KeyOf(const std::string& ns, const std::string& key) {
  std::string k;
  k.reserve(ns.size() + 1 + key.size());
  k.append(ns).push_back('\0');
  k.append(key);
  return k;
}

// What most live tasks do not have, in two side records so that a task
// with an idempotency key, say, does not carry room for a lease.
//
// Spec: fixed at submit. Labels are kept flat (FlattenLabels): one string
// where a std::map costs a node per label.
struct Engine::Extra {
  std::string type;  // only when types_ is full (Live::type points here)
  std::unique_ptr<Backoff> backoff;  // only when backoffs_ is full
  std::string key;
  std::string labels;
  std::int64_t timeout_ms = 0;
  std::int64_t spec_lease_ms = 0;  // Task::lease_ms
  KeyGroup* group = nullptr;       // its concurrency key's, if it has one
  std::int32_t concurrency_limit = 0;
  std::unique_ptr<Deps> deps;      // dependencies, dependents, workflow
  std::unique_ptr<Placement> placement;  // resources, selectors, affinity
  std::uint64_t checked_epoch = 0;  // workers_epoch_ when a scan last asked if any worker admits it
};

// A dependency that finished, as its dependents keep it.
struct ParentLive {
  IdBytes id;
  std::string name;
  TaskState state;
  std::shared_ptr<const std::string> result;  // shared by all its dependents
};

// A task in a dependency graph: what it waits for and who waits for it.
struct Engine::Deps {
  WorkflowLive* workflow = nullptr;
  std::string workflow_id;
  std::string node;
  std::vector<IdBytes> depends_on;
  std::vector<IdBytes> children;     // live or not: looked up when this one finishes
  std::vector<ParentLive> parents;   // of depends_on, those that finished
  std::int32_t pending = 0;          // of depends_on, those not finished
  DepFailure policy = DepFailure::kCancel;
};

struct Engine::WorkflowLive {
  Workflow record;
  std::int64_t unfinished = 0;
  bool failed_any = false;
  std::vector<IdBytes> tasks;  // every task that was live here (cancel walks them)
};

// Attempts: set once a task is first leased.
struct Engine::RunState {
  std::string result;
  std::string error;
  std::string worker;
  std::uint64_t lease_token = 0;
  TimeMs lease_expires_at = 0;
  bool cancel_requested = false;
  std::vector<Attempt> history;
  std::int64_t lease_ms = 0;  // the current attempt's lease duration
  TimeMs timer_at = 0;        // see Live::timer_at()
};

struct Engine::Live {
  IdBytes id;
  std::uint8_t state_value;  // TaskState
  std::uint32_t payload_size;
  Live* next = nullptr;  // LiveTable's chain
  QueueState* queue = nullptr;
  const std::string* type = nullptr;
  const Backoff* backoff = nullptr;
  std::unique_ptr<Extra> extra;
  std::unique_ptr<RunState> run;
  TimeMs run_at = 0;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  std::uint64_t seq = 0;
  // Its place in the one heap its state puts it in: the ready heap of its
  // queue (ready) or the timer heap (scheduled, running).
  HeapPos heap_pos = kNotInHeap;
  std::int32_t priority = 0;
  std::int32_t max_attempts = 0;
  std::int32_t attempts = 0;

  TaskState state() const { return static_cast<TaskState>(state_value); }
  std::string_view payload() const {
    return {reinterpret_cast<const char*>(this + 1), payload_size};
  }
  Extra& MutableExtra() {
    if (!extra) extra = std::make_unique<Extra>();
    return *extra;
  }
  std::uint64_t lease_token() const { return run ? run->lease_token : 0; }
  // When the timer heap should look at it (scheduled: run_at; running: the
  // lease's end or the attempt's deadline, whichever is first).
  TimeMs timer_at() const { return run && state() == TaskState::kRunning ? run->timer_at : run_at; }
  std::int64_t timeout_ms() const { return extra ? extra->timeout_ms : 0; }
};

// The unfinished tasks of one concurrency key in a queue, in submit order.
struct Engine::KeyGroup {
  const std::string* key = nullptr;  // the queue's map holds it
  std::set<Live*, SeqLess> members;
  std::int32_t running = 0;
  std::int32_t window = 0;  // the limit the last RefreshKey used
};

struct Engine::QueueState {
  std::string ns;
  std::string name;
  QueueSettings settings;
  ReadyHeap ready;
  // Ready tasks with a Placement, in the ready heap's order: a lease looks
  // past those the leasing worker cannot take (placement.cc).
  std::set<Live*, ReadyLess> placed;
  // Ready placed tasks no live worker could run (heap_pos kParked): out of
  // every lease's way until a worker that could registers.
  std::set<Live*, ReadyLess> parked;
  std::array<std::int64_t, 8> counts{};  // tasks by TaskState value (finished: until purged)
  std::unordered_map<std::string, KeyGroup> keys;
  double pass = 0;  // stride scheduling
  // The rate limit as GCRA, a token bucket kept as one time: `tat` is when
  // the bucket would be full again. A start is allowed at `now` if
  // tat - (burst - 1) * interval <= now, and moves tat on by one interval.
  // One addition per start, so no rounding builds up.
  double tat = 0;
  bool bucket_empty = false;  // restored: the bucket starts empty at first use
};


struct Engine::ScheduleLive {
  Schedule s;             // as stored (next_fire_times empty)
  ScheduleTiming timing;  // built from s.spec
  TimeMs due = 0;         // when Tick looks at it next
  HeapPos heap_pos = kNotInHeap;
};

struct Engine::WorkerLive {
  // What one running task holds of the worker: taken at lease, given back
  // exactly when the attempt ends.
  struct Holding {
    std::map<std::string, std::int64_t> resources;
    std::vector<std::string> gpus;  // device ids assigned to it
  };
  WorkerInfo info;  // `running`, `in_use`, `gpu_devices_in_use` and `reserved_for` left empty
  std::map<std::string, Holding> running;     // by task id
  std::map<std::string, std::int64_t> used;   // the sum of the holdings
  std::set<std::string> gpus_in_use;
  std::string reserved_for;                   // a task id, or empty
  std::set<std::string> affinity_keys;        // keys bound to it
  TimeMs deadline = 0;                        // last_seen + the grace
  HeapPos heap_pos = kNotInHeap;
};

struct Engine::TriggerLive {
  Trigger t;
};

}  // namespace dray
