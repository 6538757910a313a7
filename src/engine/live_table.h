// The live-task table: every live (non-terminal) task in its compact form,
// found by id.
//
// A live task is one allocation: the `Live` header (120 bytes, checked
// below) followed by its payload's bytes. What most tasks lack hangs off
// two optional side records: `Extra` (spec fields fixed at submit: key,
// labels, timeout, placement, dependencies, ...) and `RunState` (the
// attempt state a task has once it is first leased). Type names and
// backoff policies are interned: a task points at a shared copy, up to a
// cap past which it keeps its own copy in `Extra`.
//
// The table is an intrusive chained hash table over Live::next: one
// pointer per task and one per two tasks for buckets; it owns the tasks in
// it. Compact builds a live task from a whole Task, Expand builds the
// whole Task back, Absorb takes back the fields a transition changes.
// Which queue, concurrency key and workflow a task belongs to are the
// engine's: Compact sets `queue` and leaves `Extra::group` and
// `Deps::workflow` unset for the caller to link.
//
// Threading: not thread-safe; the engine's owner serializes every call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "core/ids.h"
#include "dray/types.h"
#include "engine/indexed_heap.h"

namespace dray {

struct Live;
struct KeyGroup;
struct QueueState;
struct WorkflowLive;

// A dependency that finished, as its dependents keep it.
struct ParentLive {
  IdBytes id;
  std::string name;
  TaskState state;
  std::shared_ptr<const std::string> result;  // shared by all its dependents
};

// A task in a dependency graph: what it waits for and who waits for it.
struct Deps {
  WorkflowLive* workflow = nullptr;  // linked by the engine
  std::string workflow_id;
  std::string node;
  std::vector<IdBytes> depends_on;
  std::vector<IdBytes> children;     // live or not: looked up when this one finishes
  std::vector<ParentLive> parents;   // of depends_on, those that finished
  std::int32_t pending = 0;          // of depends_on, those not finished
  DepFailure policy = DepFailure::kCancel;
};

// What most live tasks do not have, in two side records so that a task
// with an idempotency key, say, does not carry room for a lease.
//
// Spec: fixed at submit. Labels are kept flat (FlattenLabels): one string
// where a std::map costs a node per label.
struct Extra {
  std::string type;  // only when the interned types are full (Live::type points here)
  std::unique_ptr<Backoff> backoff;  // only when the interned backoffs are full
  std::string key;
  std::string labels;
  std::int64_t timeout_ms = 0;
  std::int64_t spec_lease_ms = 0;  // Task::lease_ms
  KeyGroup* group = nullptr;       // its concurrency key's, if it has one (linked by the engine)
  std::int32_t concurrency_limit = 0;
  std::unique_ptr<Deps> deps;      // dependencies, dependents, workflow
  std::unique_ptr<Placement> placement;  // resources, selectors, affinity
  // WorkerPool::epoch() when a lease scan last asked whether any worker admits it.
  std::uint64_t checked_epoch = 0;
};

// Attempts: set once a task is first leased.
struct RunState {
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

struct Live {
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
  Deps* deps() const { return extra ? extra->deps.get() : nullptr; }
  KeyGroup* group() const { return extra ? extra->group : nullptr; }
};

// The header every live task pays for (docs/architecture.md, bench w4):
// a field added here costs 10M queued tasks its size each.
static_assert(sizeof(void*) != 8 || sizeof(Live) == 120, "a live task's header grew");

// When a running attempt must end at the latest: its timeout, if any.
inline TimeMs AttemptDeadline(const Live* l) {
  if (l->timeout_ms() <= 0 || !l->run || l->run->history.empty()) return 0;
  return l->run->history.back().started_at + l->timeout_ms();
}

// Orders: ready tasks (priority, then submit order), timers (timer_at,
// then submit order), a concurrency key's members (submit order).
struct ReadyLess {
  bool operator()(const Live* a, const Live* b) const {
    if (a->priority != b->priority) return a->priority < b->priority;
    return a->seq < b->seq;
  }
};
struct TimerLess {
  bool operator()(const Live* a, const Live* b) const {
    const TimeMs ta = a->timer_at(), tb = b->timer_at();
    if (ta != tb) return ta < tb;
    return a->seq < b->seq;
  }
};
struct SeqLess {
  bool operator()(const Live* a, const Live* b) const { return a->seq < b->seq; }
};
// Both heaps a task can be in share Live::heap_pos: it is in one at a time.
struct LiveHeapPos {
  HeapPos& operator()(Live* l) const { return l->heap_pos; }
};
using ReadyHeap = IndexedHeap<Live, ReadyLess, LiveHeapPos>;
using TimerHeap = IndexedHeap<Live, TimerLess, LiveHeapPos>;

// Frees a live task: its header and its payload are one allocation.
struct LiveDeleter {
  void operator()(Live* l) const;
};
using LivePtr = std::unique_ptr<Live, LiveDeleter>;

class LiveTable {
 public:
  LiveTable() = default;
  LiveTable(const LiveTable&) = delete;
  LiveTable& operator=(const LiveTable&) = delete;
  ~LiveTable();  // frees every task still in it

  // --- The index by id. O(1) expected.
  Live* Find(const IdBytes& id) const;
  void Insert(LivePtr l);    // the id must not be present
  LivePtr Remove(Live* l);   // l must be present; the caller frees it
  std::size_t size() const { return size_; }

  // --- The compact form. A new live task (not in the table) from a whole
  // one whose id ParseId accepts, in queue `q`.
  LivePtr Compact(const Task& task, QueueState* q);
  // The whole task a live one stands for (wait_reason left empty).
  static Task Expand(const Live* l);
  // Takes the fields a transition may change back from `t`: state, run_at,
  // updated_at, max_attempts, attempts and the attempt state.
  static void Absorb(Live* l, const Task& t);

  // Interned values (stable pointers, never freed while the table lives),
  // or null past the cap.
  const std::string* InternType(const std::string& type);
  const Backoff* InternBackoff(const Backoff& b);
  static constexpr std::size_t kMaxInternedTypes = 4096;
  static constexpr std::size_t kMaxInternedBackoffs = 1024;

 private:
  static std::size_t Hash(const IdBytes& id);
  void Grow();

  std::vector<Live*> buckets_;
  std::size_t size_ = 0;
  // Interned values live tasks point at; never shrink, so they are capped.
  std::unordered_set<std::string> types_;
  std::map<std::tuple<std::int64_t, std::int64_t, double, double>, std::unique_ptr<Backoff>>
      backoffs_;
};

}  // namespace dray
