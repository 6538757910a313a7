// The worker runtime: leases tasks from a Dray server and runs registered
// handlers on a pool of threads.
//
//   dray::Worker w(client_options, worker_options);
//   w.Handle("resize", [](dray::TaskContext& ctx) { ...; return R"({"ok":true})"; });
//   w.Run();  // until Stop()
//
// Threading: Handle() and HandleAll() before Run(). Run() blocks and runs
// handlers on `concurrency` threads of its own, plus one thread each for
// heartbeats and acks; all are joined before Run() returns. A handler may be
// called on several threads at once. Stop() may be called from any thread.
//
// Outcomes: a handler's return value (JSON text) completes the attempt; an
// exception fails it with what() as the error and the task is retried after
// backoff while attempts are left; NonRetryableError fails it for good. A
// handler that returns after a cancel was requested reports failure, which
// ends the task cancelled. If the server refuses a heartbeat with 409 (the
// lease was lost: expired, timed out, reassigned), the handler's stop token
// fires and its outcome is dropped: another attempt owns the task.
// Every leased task gets exactly one outcome reported or is dropped that way.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "dray/client.h"
#include "dray/types.h"

namespace dray {

struct WorkerOptions {
  std::string name;                           // default: hostname-pid
  std::vector<std::string> queues = {"default"};
  int concurrency = 4;                        // handler threads
  int lease_batch = 0;                        // most tasks per lease call; 0: concurrency
  // Tasks leased ahead of the handlers: the worker holds at most
  // concurrency + prefetch tasks (running or waiting for a handler thread).
  // 0 takes a task only when a handler is free, which is fairest to other
  // workers when tasks are long; a few hundred lets short tasks stream in
  // large leases while earlier ones run. A waiting task's lease is kept
  // alive by heartbeats like a running one's.
  int prefetch = 0;
  // Long-poll wait per lease call. Kept short (not 30 s) on purpose: Stop()
  // cuts the poll in flight, and a server that does not notice the closed
  // connection could still hand that waiter a task, which then sits leased
  // to nobody until its lease expires; the short poll bounds that window.
  std::chrono::milliseconds poll_wait{5'000};
  // How often each leased task is heartbeated: this, but never more than a
  // third of its lease (0: a third of the lease). It is also how long a
  // cancel may take to reach a running handler.
  std::chrono::milliseconds heartbeat_interval{0};
  std::size_t ack_batch = 256;                // flush acks at this many...
  std::chrono::milliseconds ack_linger{2};    // ...or after this long
  // After Stop(), how long to keep retrying acks the server does not take
  // (it is down): then they are given up, their leases run out and the
  // server runs those tasks again. While not stopping, acks are retried
  // until delivered.
  std::chrono::milliseconds stop_ack_timeout{10'000};
  // Registration (docs/placement.md). When set, the worker registers under
  // `name` with this capacity, labels and GPU device ids (its queues: these
  // queues when it lists none) before it leases, heartbeats as a worker
  // every `worker_heartbeat` (registering again when the server forgot it,
  // as after a restart), and leaves when Run() returns. Tasks that request
  // resources or require labels run only on registered workers.
  std::optional<WorkerSpec> registration;
  std::chrono::milliseconds worker_heartbeat{2'000};
};

enum class StopMode {
  kFinishRunning,  // let running handlers finish and report their outcomes
  kCancelRunning,  // also fire every running handler's stop token, fail
                   // (retryably) tasks leased but not started, and try each
                   // pending ack once
};

// Thrown by a handler: fail the attempt and do not retry.
class NonRetryableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by a handler: fail the attempt with a message and keep a result
// (JSON text) beside it, such as a command's exit code and output.
class TaskFailed : public std::runtime_error {
 public:
  TaskFailed(const std::string& message, std::string result_json, bool retryable = true)
      : std::runtime_error(message), result_(std::move(result_json)), retryable_(retryable) {}
  const std::string& result() const { return result_; }
  bool retryable() const { return retryable_; }

 private:
  std::string result_;
  bool retryable_;
};

class TaskContext {
 public:
  TaskContext(const Task& task, std::stop_token stop, const std::atomic<bool>* cancel,
              const std::vector<ParentResult>* parents = nullptr,
              const std::vector<std::string>* gpu_devices = nullptr)
      : task_(task),
        stop_(std::move(stop)),
        cancel_(cancel),
        parents_(parents),
        gpu_devices_(gpu_devices) {}
  const Task& task() const { return task_; }
  const std::string& payload() const { return task_.payload; }  // JSON text
  // The tasks this one depends on (a workflow's), in depends_on order.
  const std::vector<ParentResult>& parents() const {
    static const std::vector<ParentResult> kNone;
    return parents_ ? *parents_ : kNone;
  }
  // A dependency's result (JSON text) by its name in the workflow (or its
  // id, for a task outside it); nullptr if there is no such dependency.
  const std::string* parent_result(std::string_view name) const {
    for (const ParentResult& p : parents()) {
      if (p.name == name) return &p.result;
    }
    return nullptr;
  }
  // The GPU device ids this attempt was given (a registered worker with
  // device ids, a task that requests "gpu"); empty otherwise.
  const std::vector<std::string>& gpu_devices() const {
    static const std::vector<std::string> kNone;
    return gpu_devices_ ? *gpu_devices_ : kNone;
  }
  // A broadcast copy's shard: task().placement.shard_index of shard_total.
  std::int32_t shard_index() const { return task_.placement.shard_index; }
  std::int32_t shard_total() const { return task_.placement.shard_total; }
  // True once the server asked to cancel this task (learned from heartbeats).
  bool cancel_requested() const { return cancel_->load(std::memory_order_relaxed); }
  // Fires when the handler should stop: cancel requested, lease lost, or
  // Stop(StopMode::kCancelRunning). The handler should return (or throw)
  // soon after; what it returns then is handled as described above.
  std::stop_token stop_token() const { return stop_; }

 private:
  const Task& task_;
  std::stop_token stop_;
  const std::atomic<bool>* cancel_;
  const std::vector<ParentResult>* parents_;
  const std::vector<std::string>* gpu_devices_;
};

// Returns the result as JSON text ("null" for none).
using HandlerFn = std::function<std::string(TaskContext&)>;

class Worker {
 public:
  Worker(ClientOptions client, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Handle(const std::string& type, HandlerFn fn);
  // Runs for every type without its own handler. Without it, such a task
  // fails for good with "no handler for type X".
  void HandleAll(HandlerFn fn);

  // Blocks until Stop(). Returns an error only if it could not start. Call
  // it once.
  Status Run();
  // Stops leasing (a lease long-poll in flight is cut; a task its answer
  // carried then goes back to the queue when its lease expires) and makes
  // Run() return once every leased task's outcome is acknowledged or given
  // up (see stop_ack_timeout). May be called from any thread, more than
  // once (a later kCancelRunning hardens an earlier kFinishRunning), before
  // or during Run(); not from a signal handler (it takes a mutex).
  void Stop(StopMode mode = StopMode::kFinishRunning);

  struct Stats {
    std::uint64_t leased = 0;        // tasks received from the server
    std::uint64_t succeeded = 0;     // outcomes queued for ack, by kind
    std::uint64_t failed = 0;
    std::uint64_t dropped = 0;       // lease lost (409 on heartbeat): no outcome sent
    std::uint64_t acks_refused = 0;  // the server refused the ack (e.g. 409 stale)
    std::uint64_t acks_unsent = 0;   // given up after Stop() with the server away
  };
  // leased == succeeded + failed + dropped once Run() has returned.
  Stats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace dray
