// JSON on the wire: decoding (with validation) of what clients send, and
// encoding of what Dray answers. Decoders are strict: wrong types, values out
// of range and unknown fields are refused with a Status that names the field.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "core/limits.h"
#include "dray/status.h"
#include "dray/types.h"

namespace dray {

// Parses a request body. Malformed JSON gives kMalformed with the position.
StatusOr<boost::json::value> ParseJson(std::string_view body);

// A body of POST /v1/tasks: one spec, or {"tasks": [spec, ...]}.
struct SubmitRequest {
  bool batch = false;
  std::vector<TaskSpec> specs;
};
StatusOr<SubmitRequest> DecodeSubmit(const boost::json::value& body, const Limits& limits);
StatusOr<TaskSpec> DecodeTaskSpec(const boost::json::value& v, const Limits& limits,
                                  std::string_view where = "");

// A body of POST /v1/workflows: {"name", "on_failure", "tasks": [task spec
// + "name", "depends_on", "on_failure"]}. Names, dependencies and cycles
// are checked by the engine, which knows the tasks that already exist.
StatusOr<WorkflowSpec> DecodeWorkflowSpec(const boost::json::value& body, const Limits& limits);

// A body of POST /v1/schedules (issue 6): a task template and its timing.
// The cron expression and the time zone are checked here, so that a bad
// one is a 422 before anything is stored.
StatusOr<ScheduleSpec> DecodeScheduleSpec(const boost::json::value& body, const Limits& limits);

// A task spec as POST /v1/tasks takes it (fields left unset are left out).
boost::json::object EncodeTaskSpec(const TaskSpec& s);

// A schedule's spec as POST /v1/schedules takes it; a schedule as stored
// and as GET /v1/schedules/{id} answers it: the spec with "namespace",
// created_at, updated_at, last_tick, last_fired_at, last_task,
// buffered_tick, fired, skipped and, when known, next_fire_times.
boost::json::object EncodeScheduleSpec(const ScheduleSpec& s);
boost::json::object EncodeSchedule(const Schedule& s);
// The inverse of EncodeSchedule (the store, clients): the spec is checked
// as on POST, but against no size limits (a limit may have shrunk since).
StatusOr<Schedule> DecodeSchedule(const boost::json::value& v);

// A body of POST /v1/events: {"name", "id", "payload"}.
StatusOr<EventSpec> DecodeEventSpec(const boost::json::value& body, const Limits& limits);
// {"namespace", "id", "name", "payload", "created_at", "tasks"}.
boost::json::object EncodeEvent(const Event& e);
StatusOr<Event> DecodeEvent(const boost::json::value& v);

// A body of POST /v1/triggers: {"id", "name", "on": {"event": name,
// "match": {path: value}} or {"task": {"queue", "type", "states"}},
// "task": template, "paused"}.
StatusOr<TriggerSpec> DecodeTriggerSpec(const boost::json::value& body, const Limits& limits);
// The spec with "namespace", created_at, updated_at and fired.
boost::json::object EncodeTrigger(const Trigger& t);
StatusOr<Trigger> DecodeTrigger(const boost::json::value& v);
// A body of POST /v1/workers: {"id", "capacity": {resource: integer},
// "gpu_devices": [...], "labels": {...}, "queues": [...]}.
StatusOr<WorkerSpec> DecodeWorkerSpec(const boost::json::value& body, const Limits& limits);
// The spec with "namespace", registered_at, last_seen, running, in_use,
// gpu_devices_in_use and reserved_for.
boost::json::object EncodeWorker(const WorkerInfo& w);
// The inverse, lenient (clients): a missing or mistyped field reads as empty.
WorkerInfo DecodeWorker(const boost::json::object& o);

// A workflow's own fields as AppendWorkflowJson (json_writer.h) writes them;
// lenient as DecodeWorker.
Workflow DecodeWorkflow(const boost::json::object& o);

// Whether `payload` holds each (dotted path, JSON value) of `match`
// (numbers compare by value: 1 matches 1.0).
bool MatchPayload(const boost::json::value& payload,
                  const std::vector<std::pair<std::string, std::string>>& match);

// InvalidArgument naming `field` if `v` holds a number outside a double's
// range anywhere: Boost.JSON 1.81 reads 1e400 as infinity and writes it back
// as `Infinity`, which is not JSON, so such a payload or result would make
// every later answer about its task unreadable.
Status CheckFinite(const boost::json::value& v, std::string_view field);

// Names (namespace, queue): 1..max_name_bytes of [A-Za-z0-9_.:-].
Status ValidateName(std::string_view field, std::string_view value, const Limits& limits);

// The task as the API returns it (written by AppendTaskJson in
// json_writer.h; EncodeTask reads that text back as a document).
boost::json::object EncodeTask(const Task& t);
std::string TaskToJson(const Task& t);
// The inverse, for clients. Accepts what EncodeTask writes.
StatusOr<Task> DecodeTask(const boost::json::value& v);

// Placement (docs/placement.md). A task spec's fields "resources",
// "require", "prefer" and "affinity_key": decodes field `k` into `p`, and
// says in `known` whether `k` is one of them.
Status DecodePlacementField(std::string_view k, const boost::json::value& x, const std::string& f,
                            const Limits& limits, Placement* p, bool* known);
// Those fields, and "broadcast" for a broadcast copy: as an object, and
// as its members without the braces ("" for none).
boost::json::object EncodePlacement(const Placement& p);
std::string PlacementToJson(const Placement& p);
// The inverse, lenient: reads what PlacementToJson wrote among `o`'s members.
Placement DecodePlacement(const boost::json::object& o);

boost::json::object EncodeBackoff(const Backoff& b);
StatusOr<Backoff> DecodeBackoff(const boost::json::value& v, std::string_view field);

boost::json::object EncodeQueueSettings(const QueueSettings& s);
// Applies the fields present in a PATCH body to `settings`.
Status ApplyQueuePatch(const boost::json::value& body, QueueSettings* settings);

// {"error": {"code": ..., "message": ...}}
std::string ErrorJson(const Status& s);

// Lenient readers for documents Dray wrote itself (stored rows, server
// answers): a missing or mistyped field reads as 0 or "".
std::int64_t JsonInt(const boost::json::object& o, std::string_view key);
std::string JsonString(const boost::json::object& o, std::string_view key);

// Reads a JSON text into a value; "" reads as null.
boost::json::value JsonOrNull(std::string_view text);

}  // namespace dray
