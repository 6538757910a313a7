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
// (seq), which also breaks ties deterministically.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "core/state_machine.h"
#include "dray/status.h"
#include "dray/types.h"
#include "engine/indexed_heap.h"
#include "store/store.h"

namespace dray {

struct EngineOptions {
  std::int64_t idempotency_window_ms = 24LL * 3600 * 1000;
  std::size_t max_live_tasks = 10'000'000;
  std::uint64_t seed = 0;  // backoff jitter; 0 = random
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
  void RestoreTask(Task&& task);  // a non-terminal task
  void RestoreKey(const std::string& ns, const std::string& key, const std::string& id,
                  TimeMs created_at);
  void RestoreMarks(const StoreMarks& marks);
  // Finished tasks per queue and state, so that queue counts need no scan.
  void RestoreFinishedCounts(const std::vector<StateCount>& counts);
  // A finished task was purged from the store.
  void ForgetFinished(const std::string& ns, const std::string& queue, TaskState state);

  // --- Producers.
  // Accepts all specs or none. ResourceExhausted past max_live_tasks.
  StatusOr<std::vector<SubmitOutcome>> Submit(std::vector<TaskSpec>&& specs, TimeMs now,
                                               EngineOutput* out);
  // Cancels a live task (a running one is only marked cancel-requested).
  // NotFound if the task is not live here.
  StatusOr<Task> Cancel(const std::string& ns, const std::string& id, TimeMs now,
                        EngineOutput* out);
  // Runs a terminal task again; `stored` is its committed row. Refused unless
  // it is failed or cancelled.
  StatusOr<Task> Retry(Task stored, TimeMs now, EngineOutput* out);

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
  // soon as tasks are ready in one of its queues, oldest waiter first.
  void AddWaiter(std::uint64_t waiter_id, LeaseRequest req);
  void RemoveWaiter(std::uint64_t waiter_id);
  std::vector<std::pair<std::uint64_t, std::vector<LeasedTask>>> ServeWaiters(TimeMs now,
                                                                              EngineOutput* out);

  // --- Time. Fires every timer due at `now`: scheduled tasks become ready,
  // expired leases and timed-out attempts fail. Every mutating call above
  // runs it first, so decisions never use stale timers.
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
  const Task* Find(const std::string& ns, const std::string& id) const;
  std::size_t live_tasks() const { return tasks_.size(); }
  std::size_t waiters() const { return waiters_.size(); }

 private:
  struct Live;
  struct QueueState;
  struct ReadyLess {
    bool operator()(const Live* a, const Live* b) const;
  };
  struct ReadyPos {
    std::size_t& operator()(Live* l) const;
  };
  struct TimerLess {
    bool operator()(const Live* a, const Live* b) const;
  };
  struct TimerPos {
    std::size_t& operator()(Live* l) const;
  };
  using ReadyHeap = IndexedHeap<Live, ReadyLess, ReadyPos>;
  using TimerHeap = IndexedHeap<Live, TimerLess, TimerPos>;

  QueueState& QueueFor(const std::string& ns, const std::string& name, EngineOutput* out);
  Live* FindLive(const std::string& ns, const std::string& id) const;
  StatusOr<Live*> FindLeased(const std::string& ns, const std::string& id, std::string_view token);
  // Decides and applies `event` to a live task, keeping every index right.
  // When `after` is given, it receives the task as the step left it.
  Status Step(Live* l, const EventInput& event, const ApplyInput& in, EngineOutput* out,
              Task* after = nullptr);
  void Index(Live* l);    // puts a live task in the heaps its state needs
  void Unindex(Live* l);  // takes it out of all of them
  // Queues the task's new state for the store: a whole new row when
  // `created`, else an update of the fields a transition changes.
  void Emit(const Live* l, bool created, EngineOutput* out);
  void Insert(Task&& task, EngineOutput* out);
  void PruneKeys(TimeMs now);
  std::int64_t LeaseMsFor(const Live* l, std::int64_t requested) const;

  const EngineOptions options_;
  IdGenerator ids_;
  std::mt19937_64 rng_;
  std::uint64_t next_token_ = 1;
  std::uint64_t next_seq_ = 1;

  std::unordered_map<std::string, std::unique_ptr<Live>> tasks_;  // by id
  std::map<std::pair<std::string, std::string>, std::unique_ptr<QueueState>> queues_;
  TimerHeap timers_;

  struct KeyEntry {
    std::string id;
    TimeMs created_at;
  };
  std::unordered_map<std::string, KeyEntry> keys_;  // ns + '\0' + key
  std::deque<std::pair<TimeMs, std::string>> key_order_;  // (created_at, map key)

  struct Waiter {
    std::uint64_t id;
    LeaseRequest req;
  };
  std::map<std::uint64_t, Waiter> waiters_;  // ordered by id = arrival
  std::size_t queue_rotation_ = 0;
};

}  // namespace dray
