// The C++ client for a Dray server (HTTP API v1, docs/http-api.md).
//
// Threading: a Client may be shared by any number of threads; it keeps a
// pool of keep-alive connections. Every call blocks until the server answers
// or ClientOptions::request_timeout passes (long-poll calls add their wait).
//
// Errors: the server's errors come back as Status with the server's message:
// 400 → kMalformed, 404 → kNotFound, 409 stale lease → kAborted, 409 taken
// id → kAlreadyExists, 409 wrong state → kFailedPrecondition, 413 →
// kOutOfRange, 422 → kInvalidArgument, 429 → kResourceExhausted (the message ends "(retry after N s)" when the
// server said so), 503 → kUnavailable. A server that cannot be reached, or a
// call cut by Interrupt(), gives kUnavailable; one that does not answer in
// time, kDeadlineExceeded; an answer of the wrong shape, kInternal. No call
// throws.
//
// Resending: a call is sent at most twice, and twice only when it failed on
// a pooled keep-alive connection before any byte of the answer arrived (the
// server had closed the idle connection; see client/http_client.h). Every
// other failure is returned, never silently retried: in particular a POST
// whose connection broke after it was sent may or may not have taken
// effect. Submits that must not run twice should carry an idempotency key.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dray/status.h"
#include "dray/types.h"

namespace dray {

class HttpClient;

struct ClientOptions {
  std::string server = "http://127.0.0.1:7070";
  std::string ns = "default";  // the namespace of every call
  std::chrono::milliseconds request_timeout{30'000};
  std::size_t max_idle_connections = 8;
};

struct SubmitResult {
  std::string id;
  bool created = true;  // false: the idempotency key matched an earlier task
};

struct ListFilter {
  std::string queue;
  std::optional<TaskState> state;
  std::string type;
  std::size_t limit = 100;
  std::string cursor;
  bool newest_first = true;
};

struct TaskList {
  std::vector<Task> tasks;
  std::string next_cursor;  // empty: no more pages
};

struct HeartbeatResult {
  TimeMs expires_at = 0;
  bool cancel_requested = false;
};

// One item of a batch acknowledgement: success with a result, or failure.
struct AckRequest {
  std::string id;
  std::string token;
  bool success = true;
  std::string result = "null";  // JSON text; for a failure sent only if not "null"
  std::string error;            // for failure
  bool retry = true;            // for failure
};

struct AckResult {
  std::string id;
  Status status;  // OK, or why this item was refused
  std::optional<TaskState> state;
};

// A workflow as submitted: its row and the id of each task by name.
struct WorkflowSubmitted {
  Workflow workflow;
  std::map<std::string, std::string> tasks;  // name -> task id
};

// One task of a workflow as GET /v1/workflows/{id} shows it.
struct WorkflowTaskInfo {
  std::string name;
  std::string id;
  TaskState state = TaskState::kBlocked;
  std::string queue;
  std::string type;
  std::int32_t attempts = 0;
  std::vector<std::string> depends_on;  // names (ids for tasks outside the workflow)
  std::string error;
  std::string result;  // JSON text, when at most 1 KiB; else empty
  std::string wait_reason;
  TimeMs finished_at = 0;
};

struct WorkflowInfo {
  Workflow workflow;
  std::map<TaskState, std::int64_t> counts;
  std::vector<WorkflowTaskInfo> tasks;  // in submit order
};

struct WorkflowFilter {
  std::optional<WorkflowState> state;
  std::string name;
  std::size_t limit = 100;
  std::string cursor;
};

struct WorkflowList {
  std::vector<Workflow> workflows;
  std::string next_cursor;  // empty: no more pages
};

struct TriggerList {
  std::vector<Trigger> triggers;
  std::string next_cursor;  // empty: no more pages
};

// The answer to EmitEvent.
struct EventResult {
  Event event;             // with the tasks its triggers submitted
  bool duplicate = false;  // its id was seen before: the event as first recorded
};

// What GET /v1/stream follows (docs/streams.md); empty fields match any.
struct WatchFilter {
  std::string queue;
  std::string workflow;
  std::string task;
};

// One event of the stream.
struct TaskChange {
  std::string event_id;  // give it back to Watch to resume after this event
  // The server could not resume from the id given (it restarted, or the
  // changes are no longer kept): read the state afresh; the changes that
  // follow are complete from here.
  bool reset = false;
  std::string reset_reason;
  // The task as the change left it: id, ns, queue, type, state, attempts,
  // max_attempts, workflow, node, worker, updated_at, finished_at, error and
  // result (unless over 64 KiB). Payload, labels and history are not sent.
  Task task;
};

struct ScheduleList {
  std::vector<Schedule> schedules;
  std::string next_cursor;  // empty: no more pages
};

class Client {
 public:
  // Fails only on a malformed server address.
  static StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);
  ~Client();

  StatusOr<SubmitResult> Submit(const TaskSpec& spec);
  // All or none; results in the order of `specs`.
  StatusOr<std::vector<SubmitResult>> SubmitBatch(const std::vector<TaskSpec>& specs);
  StatusOr<Task> Get(const std::string& id);
  // Returns once the task is terminal; DeadlineExceeded after `timeout`.
  StatusOr<Task> Wait(const std::string& id, std::chrono::milliseconds timeout);
  StatusOr<TaskList> List(const ListFilter& filter);
  StatusOr<Task> Cancel(const std::string& id);
  StatusOr<Task> Retry(const std::string& id);

  // Future-style waits: the same long polls on a thread of their own. The
  // futures must be waited for before the Client is destroyed.
  std::future<StatusOr<Task>> WaitAsync(const std::string& id, std::chrono::milliseconds timeout);
  std::future<StatusOr<WorkflowInfo>> WaitWorkflowAsync(const std::string& id,
                                                        std::chrono::milliseconds timeout);

  // Follows task changes as they are committed (GET /v1/stream), calling
  // `on_change` for each, in commit order, until it returns false (then OK).
  // A dropped connection is reopened, resuming after the last event seen,
  // so no change is missed or repeated (a reset says when that could not
  // be done). Interrupt() ends it with Unavailable; a refused request
  // (a bad filter, an unknown task) ends it with the server's error.
  // `last_event_id`: resume after this event; empty: from now (a stream of
  // one task starts with its current state).
  Status Watch(const WatchFilter& filter, const std::function<bool(const TaskChange&)>& on_change,
               std::string last_event_id = "");

  // One copy of `spec` for each live registered worker that serves its
  // queue and could run it, each pinned to its worker with its shard index
  // (docs/placement.md). FailedPrecondition when there is no such worker.
  StatusOr<std::vector<BroadcastCopy>> Broadcast(const TaskSpec& spec);

  // Workflows (docs/workflows.md). The spec's namespace is the client's.
  StatusOr<WorkflowSubmitted> SubmitWorkflow(const WorkflowSpec& spec);
  StatusOr<WorkflowInfo> GetWorkflow(const std::string& id);
  // Returns once the workflow has finished; DeadlineExceeded after `timeout`.
  StatusOr<WorkflowInfo> WaitWorkflow(const std::string& id, std::chrono::milliseconds timeout);
  StatusOr<WorkflowList> ListWorkflows(const WorkflowFilter& filter);
  StatusOr<Workflow> CancelWorkflow(const std::string& id);

  // Schedules (docs/schedules.md). The spec's namespace is the client's.
  // Answers carry the next fire times (`next` of them for a get).
  StatusOr<Schedule> CreateSchedule(const ScheduleSpec& spec);
  StatusOr<Schedule> GetSchedule(const std::string& id, std::size_t next = 5);
  StatusOr<ScheduleList> ListSchedules(std::size_t limit = 100, const std::string& cursor = "");
  // `patch_json`: an object of the fields to change (see PATCH
  // /v1/schedules/{id} in docs/http-api.md).
  StatusOr<Schedule> PatchSchedule(const std::string& id, const std::string& patch_json);
  StatusOr<Schedule> PauseSchedule(const std::string& id);
  StatusOr<Schedule> ResumeSchedule(const std::string& id);
  Status DeleteSchedule(const std::string& id);

  // Events and triggers (docs/events.md). The namespace is the client's.
  StatusOr<EventResult> EmitEvent(const EventSpec& event);
  StatusOr<Event> GetEvent(const std::string& id);
  StatusOr<Trigger> CreateTrigger(const TriggerSpec& spec);
  StatusOr<Trigger> GetTrigger(const std::string& id);
  StatusOr<TriggerList> ListTriggers(std::size_t limit = 100, const std::string& cursor = "");
  StatusOr<Trigger> PauseTrigger(const std::string& id);
  StatusOr<Trigger> ResumeTrigger(const std::string& id);
  Status DeleteTrigger(const std::string& id);

  // Registered workers (docs/workers.md). A registered worker must show a
  // sign of life (this heartbeat, a lease, a task call) within the server's
  // grace, or its tasks are released; NotFound from the heartbeat means
  // register again.
  StatusOr<WorkerInfo> RegisterWorker(const WorkerSpec& spec);
  StatusOr<WorkerInfo> WorkerHeartbeat(const std::string& id);
  StatusOr<std::vector<WorkerInfo>> Workers();
  Status DeregisterWorker(const std::string& id);

  // Worker calls. `wait`: how long the server may hold the call when no task
  // is ready. `lease_ms` 0: the task's or queue's default.
  StatusOr<std::vector<LeasedTask>> Lease(const std::string& worker,
                                          const std::vector<std::string>& queues, std::size_t max,
                                          std::chrono::milliseconds wait,
                                          std::int64_t lease_ms = 0);
  StatusOr<HeartbeatResult> Heartbeat(const std::string& id, const std::string& token,
                                      std::int64_t lease_ms = 0);
  StatusOr<Task> Complete(const std::string& id, const std::string& token,
                          const std::string& result_json);
  // `result_json` (optional) is kept as the task's result, e.g. a command's
  // output beside its failure.
  StatusOr<Task> Fail(const std::string& id, const std::string& token, const std::string& error,
                      bool retry = true, const std::string& result_json = "");
  StatusOr<std::vector<AckResult>> Ack(const std::vector<AckRequest>& acks);

  StatusOr<std::vector<QueueInfo>> Queues();
  StatusOr<QueueInfo> GetQueue(const std::string& name);
  // `patch_json`: an object with any of paused, lease_ms, max_attempts, backoff.
  StatusOr<QueueInfo> PatchQueue(const std::string& name, const std::string& patch_json);

  // GET /healthz: OK when the server answers at all.
  Status Health();
  // GET /readyz: OK when the server accepts writes; otherwise Unavailable
  // with the server's reason.
  Status Ready();

  // Any call, for tools that want the raw JSON: the body of a 2xx answer.
  StatusOr<std::string> Call(const std::string& method, const std::string& path,
                             const std::string& body = "",
                             std::chrono::milliseconds extra_wait = {});

  // Aborts every call in flight on this client (they return Unavailable).
  // For shutting down a long-poll. Thread-safe.
  void Interrupt();
  // Interrupt(), and every later call fails with Unavailable at once. For a
  // caller that must not start a new long-poll after deciding to stop.
  void Shutdown();

  const ClientOptions& options() const { return options_; }

 private:
  Client(ClientOptions options, std::unique_ptr<HttpClient> http);
  std::string Target(const std::string& path, const std::string& query = "") const;

  const ClientOptions options_;
  std::unique_ptr<HttpClient> http_;
  std::atomic<std::uint64_t> interrupts_{0};  // bumped by Interrupt() and Shutdown()
};

}  // namespace dray
