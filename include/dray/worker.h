// The worker runtime: leases tasks from a Dray server and runs registered
// handlers on a pool of threads.
//
//   dray::Worker w(client_options, worker_options);
//   w.Handle("resize", [](dray::TaskContext& ctx) { ...; return R"({"ok":true})"; });
//   w.Run();  // until Stop()
//
// Threading: Handle() before Run(). Run() blocks; Stop() may be called from
// any thread (or a signal-safe wrapper) and makes Run() return after running
// handlers finish and their outcomes are acknowledged.
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
  std::chrono::milliseconds poll_wait{5'000};  // long-poll wait per lease call
  std::chrono::milliseconds heartbeat_interval{0};  // 0: a third of the lease
  std::size_t ack_batch = 256;                // flush acks at this many...
  std::chrono::milliseconds ack_linger{2};    // ...or after this long
};

// Thrown by a handler: fail the attempt and do not retry.
class NonRetryableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TaskContext {
 public:
  TaskContext(const Task& task, std::stop_token stop, const std::atomic<bool>* cancel)
      : task_(task), stop_(std::move(stop)), cancel_(cancel) {}
  const Task& task() const { return task_; }
  const std::string& payload() const { return task_.payload; }  // JSON text
  // True once the server asked to cancel this task (learned from heartbeats).
  bool cancel_requested() const { return cancel_->load(std::memory_order_relaxed); }
  // Fires when the handler should stop: cancel requested, lease lost, or the
  // worker is stopping hard.
  std::stop_token stop_token() const { return stop_; }

 private:
  const Task& task_;
  std::stop_token stop_;
  const std::atomic<bool>* cancel_;
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

  // Blocks until Stop(). Returns an error only if it could not start.
  Status Run();
  void Stop();

  struct Stats {
    std::uint64_t leased = 0, succeeded = 0, failed = 0, dropped = 0, acks_refused = 0;
  };
  Stats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace dray
