#include "dray/client.h"

#include <boost/json.hpp>
#include <thread>

#include "client/http_client.h"
#include "core/json_codec.h"
#include "core/json_writer.h"
#include "core/time_format.h"

namespace json = boost::json;

namespace dray {
namespace {

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The Status a JSON error code names ("aborted", "not_found", ...).
std::optional<StatusCode> CodeNamed(std::string_view name) {
  for (StatusCode c : {StatusCode::kInvalidArgument, StatusCode::kDeadlineExceeded,
                       StatusCode::kNotFound, StatusCode::kAlreadyExists,
                       StatusCode::kResourceExhausted, StatusCode::kFailedPrecondition,
                       StatusCode::kAborted, StatusCode::kOutOfRange, StatusCode::kUnimplemented,
                       StatusCode::kInternal, StatusCode::kUnavailable, StatusCode::kDataLoss,
                       StatusCode::kMalformed}) {
    if (StatusCodeName(c) == name) return c;
  }
  return std::nullopt;
}

// The server's error as a Status: by HTTP status, with the JSON code picking
// between the two meanings of 409.
Status FromReply(const HttpReply& r) {
  std::string code, message = r.body;
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("error") && v.at("error").is_object()) {
    const json::object& e = v.at("error").as_object();
    if (const json::value* c = e.if_contains("code"); c && c->is_string()) code = c->as_string();
    if (const json::value* m = e.if_contains("message"); m && m->is_string()) message = m->as_string();
  }
  if (!ec && v.is_object()) {
    // /readyz answers {"status": "...", "reason": "..."}.
    if (const json::value* reason = v.as_object().if_contains("reason"); reason && reason->is_string()) {
      message = reason->as_string();
    }
  }
  if (message.empty()) message = "HTTP " + std::to_string(r.status);
  if (!r.retry_after.empty()) message += " (retry after " + r.retry_after + " s)";
  switch (r.status) {
    case 400: return Malformed(message);
    case 404: return NotFound(message);
    case 409:
      if (code == "aborted") return Aborted(message);
      if (code == "already_exists") return AlreadyExists(message);
      return FailedPrecondition(message);
    case 413: return OutOfRange(message);
    case 422: return InvalidArgument(message);
    case 429: return ResourceExhausted(message);
    case 503: return Unavailable(message);
    case 507: return OutOfSpace(message);
    case 504: return DeadlineExceeded(message);
    default: return Internal("HTTP " + std::to_string(r.status) + ": " + message);
  }
}

// Parses a 2xx body and hands it to `decode`. An answer of the wrong shape
// (boost::json throws on a missing field or a wrong type) is an Internal
// error, never an exception out of the Client.
template <typename T, typename Fn>
StatusOr<T> Decode(const StatusOr<std::string>& body, Fn&& decode) {
  if (!body.ok()) return body.status();
  boost::system::error_code ec;
  json::value v = json::parse(*body, ec);
  if (ec) return Internal("the server's answer is not JSON: " + ec.message());
  try {
    return decode(v);
  } catch (const std::exception& e) {
    return Internal(std::string("unexpected answer from the server: ") + e.what());
  }
}

StatusOr<Task> TaskFrom(const StatusOr<std::string>& body) {
  return Decode<Task>(body, [](const json::value& v) { return DecodeTask(v); });
}

StatusOr<WorkflowInfo> DecodeWorkflowInfo(const json::value& v) {
  if (!v.is_object()) return Internal("a workflow must be an object");
  const json::object& o = v.as_object();
  WorkflowInfo info;
  info.workflow = DecodeWorkflow(o);
  if (info.workflow.id.empty()) return Internal("a workflow without an id");
  if (const json::value* c = o.if_contains("counts"); c && c->is_object()) {
    for (const auto& [k, n] : c->as_object()) {
      if (auto st = ParseTaskState(k); st && n.is_int64()) info.counts[*st] = n.as_int64();
    }
  }
  if (const json::value* ts = o.if_contains("tasks"); ts && ts->is_array()) {
    for (const json::value& x : ts->as_array()) {
      if (!x.is_object()) continue;
      const json::object& t = x.as_object();
      WorkflowTaskInfo ti;
      ti.name = JsonString(t, "name");
      ti.id = JsonString(t, "id");
      ti.state = ParseTaskState(JsonString(t, "state")).value_or(TaskState::kBlocked);
      ti.queue = JsonString(t, "queue");
      ti.type = JsonString(t, "type");
      ti.attempts = static_cast<std::int32_t>(JsonInt(t, "attempts"));
      if (const json::value* d = t.if_contains("depends_on"); d && d->is_array()) {
        for (const json::value& n : d->as_array()) {
          if (n.is_string()) ti.depends_on.emplace_back(n.as_string());
        }
      }
      ti.error = JsonString(t, "error");
      if (const json::value* r = t.if_contains("result"); r && !r->is_null()) {
        ti.result = JsonText(*r);
      }
      ti.wait_reason = JsonString(t, "wait_reason");
      if (const json::value* f = t.if_contains("finished_at"); f && f->is_string()) {
        ti.finished_at = ParseRfc3339(f->as_string()).value_or(0);
      }
      info.tasks.push_back(std::move(ti));
    }
  }
  return info;
}

StatusOr<QueueInfo> DecodeQueue(const json::value& v) {
  if (!v.is_object()) return Internal("a queue must be an object");
  const json::object& o = v.as_object();
  QueueInfo q;
  if (auto* n = o.if_contains("namespace"); n && n->is_string()) q.ns = n->as_string();
  if (auto* n = o.if_contains("name"); n && n->is_string()) q.name = n->as_string();
  if (auto* s = o.if_contains("settings")) {
    QueueSettings settings;
    DRAY_RETURN_IF_ERROR(ApplyQueuePatch(*s, &settings));
    q.settings = settings;
  }
  if (auto* c = o.if_contains("counts"); c && c->is_object()) {
    for (const auto& [k, n] : c->as_object()) {
      if (auto st = ParseTaskState(k); st && n.is_int64()) q.counts[*st] = n.as_int64();
    }
  }
  return q;
}

}  // namespace

StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  auto http = HttpClient::Create(options.server, options.max_idle_connections);
  if (!http.ok()) return http.status();
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(*http)));
}

Client::Client(ClientOptions options, std::unique_ptr<HttpClient> http)
    : options_(std::move(options)), http_(std::move(http)) {}

Client::~Client() = default;

std::string Client::Target(const std::string& path, const std::string& query) const {
  std::string t = path + "?namespace=" + UrlEncode(options_.ns);
  if (!query.empty()) t += "&" + query;
  return t;
}

StatusOr<std::string> Client::Call(const std::string& method, const std::string& path,
                                   const std::string& body, std::chrono::milliseconds extra_wait) {
  std::string target = path;
  if (path.rfind("/v1/", 0) == 0) {
    target = path.find('?') == std::string::npos ? Target(path)
                                                  : Target(path.substr(0, path.find('?')),
                                                           path.substr(path.find('?') + 1));
  }
  auto r = http_->Request(method, target, body, options_.request_timeout + extra_wait);
  if (!r.ok()) return r.status();
  if (r->status / 100 != 2) return FromReply(*r);
  return std::move(r->body);
}

StatusOr<SubmitResult> Client::Submit(const TaskSpec& spec) {
  return Decode<SubmitResult>(
      Call("POST", "/v1/tasks", JsonText(EncodeTaskSpec(spec))), [](const json::value& v) {
        return SubmitResult{std::string(v.at("id").as_string()), v.at("created").as_bool()};
      });
}

StatusOr<std::vector<BroadcastCopy>> Client::Broadcast(const TaskSpec& spec) {
  return Decode<std::vector<BroadcastCopy>>(
      Call("POST", "/v1/tasks/broadcast", JsonText(EncodeTaskSpec(spec))),
      [](const json::value& v) {
        std::vector<BroadcastCopy> out;
        for (const json::value& t : v.at("tasks").as_array()) {
          const json::object& o = t.as_object();
          out.push_back(BroadcastCopy{JsonString(o, "id"), JsonString(o, "worker"),
                                      static_cast<std::int32_t>(JsonInt(o, "shard_index")),
                                      o.at("created").as_bool()});
        }
        return out;
      });
}

StatusOr<std::vector<SubmitResult>> Client::SubmitBatch(const std::vector<TaskSpec>& specs) {
  json::array tasks;
  tasks.reserve(specs.size());
  for (const TaskSpec& s : specs) tasks.push_back(EncodeTaskSpec(s));
  auto body = Call("POST", "/v1/tasks", JsonText(json::object{{"tasks", std::move(tasks)}}));
  return Decode<std::vector<SubmitResult>>(body, [&](const json::value& v) {
    std::vector<SubmitResult> out;
    const json::array& ids = v.at("ids").as_array();
    const json::array& created = v.at("created").as_array();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      out.push_back(SubmitResult{std::string(ids[i].as_string()), created.at(i).as_bool()});
    }
    return out;
  });
}

StatusOr<Task> Client::Get(const std::string& id) {
  return TaskFrom(Call("GET", "/v1/tasks/" + UrlEncode(id)));
}

StatusOr<Task> Client::Wait(const std::string& id, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    // Below the server's cap of 60 s, so that the server, not the cap, ends
    // each call.
    auto wait = std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(30'000));
    auto t = TaskFrom(Call("GET", "/v1/tasks/" + UrlEncode(id) + "?wait_ms=" +
                                      std::to_string(wait.count()),
                           "", wait));
    if (!t.ok()) return t.status();
    if (IsTerminal(t->state)) return t;
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceeded("task " + id + " is still " + std::string(TaskStateName(t->state)));
    }
  }
}

StatusOr<TaskList> Client::List(const ListFilter& f) {
  std::string q = "limit=" + std::to_string(f.limit) + "&order=" + (f.newest_first ? "desc" : "asc");
  if (!f.queue.empty()) q += "&queue=" + UrlEncode(f.queue);
  if (!f.type.empty()) q += "&type=" + UrlEncode(f.type);
  if (f.state) q += "&state=" + std::string(TaskStateName(*f.state));
  if (!f.cursor.empty()) q += "&cursor=" + UrlEncode(f.cursor);
  return Decode<TaskList>(Call("GET", "/v1/tasks?" + q), [](const json::value& v) -> StatusOr<TaskList> {
    TaskList out;
    for (const json::value& t : v.at("tasks").as_array()) {
      auto task = DecodeTask(t);
      if (!task.ok()) return task.status();
      out.tasks.push_back(std::move(*task));
    }
    if (const json::value* c = v.as_object().if_contains("next_cursor"); c && c->is_string()) {
      out.next_cursor = c->as_string();
    }
    return out;
  });
}

StatusOr<WorkflowSubmitted> Client::SubmitWorkflow(const WorkflowSpec& spec) {
  json::array tasks;
  tasks.reserve(spec.tasks.size());
  for (const WorkflowNodeSpec& n : spec.tasks) {
    json::object o = EncodeTaskSpec(n.task);
    o.erase("namespace");  // a workflow's tasks are in its namespace
    o["name"] = n.name;
    if (!n.depends_on.empty()) {
      json::array deps;
      for (const std::string& d : n.depends_on) deps.push_back(json::string(d));
      o["depends_on"] = std::move(deps);
    }
    if (n.on_failure) o["on_failure"] = DepFailureName(*n.on_failure);
    tasks.push_back(std::move(o));
  }
  json::object body{{"tasks", std::move(tasks)}};
  if (!spec.name.empty()) body["name"] = spec.name;
  if (spec.on_failure != DepFailure::kCancel) body["on_failure"] = DepFailureName(spec.on_failure);
  return Decode<WorkflowSubmitted>(
      Call("POST", "/v1/workflows", JsonText(body)),
      [](const json::value& v) -> StatusOr<WorkflowSubmitted> {
        WorkflowSubmitted out;
        out.workflow = DecodeWorkflow(v.at("workflow").as_object());
        for (const auto& [name, id] : v.at("tasks").as_object()) {
          out.tasks.emplace(std::string(name), std::string(id.as_string()));
        }
        return out;
      });
}

StatusOr<WorkflowInfo> Client::GetWorkflow(const std::string& id) {
  return Decode<WorkflowInfo>(Call("GET", "/v1/workflows/" + UrlEncode(id)),
                              [](const json::value& v) { return DecodeWorkflowInfo(v); });
}

StatusOr<WorkflowInfo> Client::WaitWorkflow(const std::string& id,
                                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto wait = std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(30'000));
    auto w = Decode<WorkflowInfo>(
        Call("GET", "/v1/workflows/" + UrlEncode(id) + "?wait_ms=" + std::to_string(wait.count()),
             "", wait),
        [](const json::value& v) { return DecodeWorkflowInfo(v); });
    if (!w.ok()) return w.status();
    if (w->workflow.state != WorkflowState::kRunning) return w;
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceeded("workflow " + id + " is still running");
    }
  }
}

StatusOr<WorkflowList> Client::ListWorkflows(const WorkflowFilter& f) {
  std::string q = "limit=" + std::to_string(f.limit);
  if (f.state) q += "&state=" + std::string(WorkflowStateName(*f.state));
  if (!f.name.empty()) q += "&name=" + UrlEncode(f.name);
  if (!f.cursor.empty()) q += "&cursor=" + UrlEncode(f.cursor);
  return Decode<WorkflowList>(Call("GET", "/v1/workflows?" + q),
                              [](const json::value& v) -> StatusOr<WorkflowList> {
                                WorkflowList out;
                                for (const json::value& w : v.at("workflows").as_array()) {
                                  out.workflows.push_back(DecodeWorkflow(w.as_object()));
                                }
                                const json::value& c = v.at("next_cursor");
                                if (c.is_string()) out.next_cursor = c.as_string();
                                return out;
                              });
}

StatusOr<Workflow> Client::CancelWorkflow(const std::string& id) {
  return Decode<Workflow>(Call("POST", "/v1/workflows/" + UrlEncode(id) + "/cancel", "{}"),
                          [](const json::value& v) -> StatusOr<Workflow> {
                            return DecodeWorkflow(v.as_object());
                          });
}

namespace {
StatusOr<Schedule> ScheduleFrom(const StatusOr<std::string>& body) {
  return Decode<Schedule>(body, [](const json::value& v) { return DecodeSchedule(v); });
}
}  // namespace

StatusOr<Schedule> Client::CreateSchedule(const ScheduleSpec& spec) {
  return ScheduleFrom(Call("POST", "/v1/schedules", JsonText(EncodeScheduleSpec(spec))));
}

StatusOr<Schedule> Client::GetSchedule(const std::string& id, std::size_t next) {
  return ScheduleFrom(
      Call("GET", "/v1/schedules/" + UrlEncode(id) + "?next=" + std::to_string(next)));
}

StatusOr<ScheduleList> Client::ListSchedules(std::size_t limit, const std::string& cursor) {
  std::string q = "limit=" + std::to_string(limit);
  if (!cursor.empty()) q += "&cursor=" + UrlEncode(cursor);
  return Decode<ScheduleList>(
      Call("GET", "/v1/schedules?" + q), [](const json::value& v) -> StatusOr<ScheduleList> {
        ScheduleList list;
        for (const json::value& s : v.at("schedules").as_array()) {
          auto d = DecodeSchedule(s);
          if (!d.ok()) return d.status();
          list.schedules.push_back(std::move(*d));
        }
        if (v.at("next_cursor").is_string()) list.next_cursor = v.at("next_cursor").as_string();
        return list;
      });
}

StatusOr<Schedule> Client::PatchSchedule(const std::string& id, const std::string& patch_json) {
  return ScheduleFrom(Call("PATCH", "/v1/schedules/" + UrlEncode(id), patch_json));
}

StatusOr<Schedule> Client::PauseSchedule(const std::string& id) {
  return ScheduleFrom(Call("POST", "/v1/schedules/" + UrlEncode(id) + "/pause", "{}"));
}

StatusOr<Schedule> Client::ResumeSchedule(const std::string& id) {
  return ScheduleFrom(Call("POST", "/v1/schedules/" + UrlEncode(id) + "/resume", "{}"));
}

Status Client::DeleteSchedule(const std::string& id) {
  auto body = Call("DELETE", "/v1/schedules/" + UrlEncode(id));
  return body.ok() ? Status::Ok() : body.status();
}

namespace {
StatusOr<Trigger> TriggerFrom(const StatusOr<std::string>& body) {
  return Decode<Trigger>(body, [](const json::value& v) { return DecodeTrigger(v); });
}

// The spec as POST /v1/triggers takes it: the answer's form without the
// server's fields.
json::object EncodeTriggerSpec(const TriggerSpec& spec) {
  Trigger t;
  t.spec = spec;
  json::object o = EncodeTrigger(t);
  for (std::string_view k : {"namespace", "created_at", "updated_at", "fired"}) o.erase(k);
  return o;
}
}  // namespace

StatusOr<EventResult> Client::EmitEvent(const EventSpec& event) {
  json::object o{{"name", event.name}, {"payload", JsonOrNull(event.payload)}};
  if (!event.id.empty()) o["id"] = event.id;
  return Decode<EventResult>(Call("POST", "/v1/events", JsonText(o)),
                             [](const json::value& v) -> StatusOr<EventResult> {
                               auto e = DecodeEvent(v);
                               if (!e.ok()) return e.status();
                               return EventResult{std::move(*e), v.at("duplicate").as_bool()};
                             });
}

StatusOr<Event> Client::GetEvent(const std::string& id) {
  return Decode<Event>(Call("GET", "/v1/events/" + UrlEncode(id)),
                       [](const json::value& v) { return DecodeEvent(v); });
}

StatusOr<Trigger> Client::CreateTrigger(const TriggerSpec& spec) {
  return TriggerFrom(Call("POST", "/v1/triggers", JsonText(EncodeTriggerSpec(spec))));
}

StatusOr<Trigger> Client::GetTrigger(const std::string& id) {
  return TriggerFrom(Call("GET", "/v1/triggers/" + UrlEncode(id)));
}

StatusOr<TriggerList> Client::ListTriggers(std::size_t limit, const std::string& cursor) {
  std::string q = "limit=" + std::to_string(limit);
  if (!cursor.empty()) q += "&cursor=" + UrlEncode(cursor);
  return Decode<TriggerList>(
      Call("GET", "/v1/triggers?" + q), [](const json::value& v) -> StatusOr<TriggerList> {
        TriggerList list;
        for (const json::value& t : v.at("triggers").as_array()) {
          auto d = DecodeTrigger(t);
          if (!d.ok()) return d.status();
          list.triggers.push_back(std::move(*d));
        }
        if (v.at("next_cursor").is_string()) list.next_cursor = v.at("next_cursor").as_string();
        return list;
      });
}

StatusOr<Trigger> Client::PauseTrigger(const std::string& id) {
  return TriggerFrom(Call("POST", "/v1/triggers/" + UrlEncode(id) + "/pause", "{}"));
}

StatusOr<Trigger> Client::ResumeTrigger(const std::string& id) {
  return TriggerFrom(Call("POST", "/v1/triggers/" + UrlEncode(id) + "/resume", "{}"));
}

Status Client::DeleteTrigger(const std::string& id) {
  auto body = Call("DELETE", "/v1/triggers/" + UrlEncode(id));
  return body.ok() ? Status::Ok() : body.status();
}

namespace {
StatusOr<WorkerInfo> WorkerFrom(const StatusOr<std::string>& body) {
  return Decode<WorkerInfo>(body, [](const json::value& v) { return DecodeWorker(v.as_object()); });
}
}  // namespace

StatusOr<WorkerInfo> Client::RegisterWorker(const WorkerSpec& spec) {
  json::object capacity, labels;
  for (const auto& [k, v] : spec.capacity) capacity[k] = v;
  for (const auto& [k, v] : spec.labels) labels[k] = v;
  json::array devices, queues;
  for (const std::string& d : spec.gpu_devices) devices.push_back(json::value(d));
  for (const std::string& q : spec.queues) queues.push_back(json::value(q));
  const json::object body{{"id", spec.id},
                          {"capacity", std::move(capacity)},
                          {"gpu_devices", std::move(devices)},
                          {"labels", std::move(labels)},
                          {"queues", std::move(queues)}};
  return WorkerFrom(Call("POST", "/v1/workers", JsonText(body)));
}

StatusOr<WorkerInfo> Client::WorkerHeartbeat(const std::string& id) {
  return WorkerFrom(Call("POST", "/v1/workers/" + UrlEncode(id) + "/heartbeat", "{}"));
}

StatusOr<std::vector<WorkerInfo>> Client::Workers() {
  return Decode<std::vector<WorkerInfo>>(Call("GET", "/v1/workers"), [](const json::value& v) {
    std::vector<WorkerInfo> out;
    for (const json::value& w : v.at("workers").as_array()) out.push_back(DecodeWorker(w.as_object()));
    return out;
  });
}

Status Client::DeregisterWorker(const std::string& id) {
  auto body = Call("DELETE", "/v1/workers/" + UrlEncode(id));
  return body.ok() ? Status::Ok() : body.status();
}

StatusOr<Task> Client::Cancel(const std::string& id) {
  return TaskFrom(Call("POST", "/v1/tasks/" + UrlEncode(id) + "/cancel", "{}"));
}

StatusOr<Task> Client::Retry(const std::string& id) {
  return TaskFrom(Call("POST", "/v1/tasks/" + UrlEncode(id) + "/retry", "{}"));
}

StatusOr<std::vector<LeasedTask>> Client::Lease(const std::string& worker,
                                                const std::vector<std::string>& queues,
                                                std::size_t max, std::chrono::milliseconds wait,
                                                std::int64_t lease_ms) {
  json::array qs;
  for (const std::string& q : queues) qs.push_back(json::string(q));
  json::object req{{"worker", worker}, {"queues", std::move(qs)}, {"max", max},
                   {"wait_ms", wait.count()}};
  if (lease_ms > 0) req["lease_ms"] = lease_ms;
  auto body = Call("POST", "/v1/leases", JsonText(req), wait);
  return Decode<std::vector<LeasedTask>>(
      body, [](const json::value& v) -> StatusOr<std::vector<LeasedTask>> {
        std::vector<LeasedTask> out;
        for (const json::value& t : v.at("tasks").as_array()) {
          auto task = DecodeTask(t);
          if (!task.ok()) return task.status();
          LeasedTask l{std::move(*task), {}, {}, {}};
          l.lease.token = std::string(t.at("lease").at("token").as_string());
          l.lease.expires_at = ParseRfc3339(t.at("lease").at("expires_at").as_string()).value_or(0);
          if (const json::value* ps = t.as_object().if_contains("parents"); ps && ps->is_object()) {
            // In depends_on order, as the server sent them.
            for (const auto& [name, p] : ps->as_object()) {
              if (!p.is_object()) continue;
              ParentResult r;
              r.name = name;
              r.id = JsonString(p.as_object(), "id");
              r.state = ParseTaskState(JsonString(p.as_object(), "state")).value_or(TaskState::kSucceeded);
              if (const json::value* res = p.as_object().if_contains("result"); res && !res->is_null()) {
                r.result = JsonText(*res);
              }
              l.parents.push_back(std::move(r));
            }
          }
          if (const json::value* g = t.as_object().if_contains("gpu_devices"); g && g->is_array()) {
            for (const json::value& d : g->as_array()) {
              if (d.is_string()) l.gpu_devices.emplace_back(d.as_string());
            }
          }
          out.push_back(std::move(l));
        }
        return out;
      });
}

StatusOr<HeartbeatResult> Client::Heartbeat(const std::string& id, const std::string& token,
                                            std::int64_t lease_ms) {
  json::object req{{"lease", token}};
  if (lease_ms > 0) req["lease_ms"] = lease_ms;
  auto body = Call("POST", "/v1/tasks/" + UrlEncode(id) + "/heartbeat", JsonText(req));
  return Decode<HeartbeatResult>(body, [](const json::value& v) {
    return HeartbeatResult{ParseRfc3339(v.at("expires_at").as_string()).value_or(0),
                           v.at("cancel_requested").as_bool()};
  });
}

StatusOr<Task> Client::Complete(const std::string& id, const std::string& token,
                                const std::string& result_json) {
  json::object req{{"lease", token}, {"result", JsonOrNull(result_json)}};
  return TaskFrom(Call("POST", "/v1/tasks/" + UrlEncode(id) + "/complete", JsonText(req)));
}

StatusOr<Task> Client::Fail(const std::string& id, const std::string& token,
                            const std::string& error, bool retry, const std::string& result_json) {
  json::object req{{"lease", token}, {"error", error}, {"retry", retry}};
  if (!result_json.empty()) req["result"] = JsonOrNull(result_json);
  return TaskFrom(Call("POST", "/v1/tasks/" + UrlEncode(id) + "/fail", JsonText(req)));
}

StatusOr<std::vector<AckResult>> Client::Ack(const std::vector<AckRequest>& acks) {
  json::array items;
  items.reserve(acks.size());
  for (const AckRequest& a : acks) {
    json::object o{{"id", a.id}, {"lease", a.token}};
    if (a.success) {
      o["result"] = JsonOrNull(a.result);
    } else {
      o["error"] = a.error;
      o["retry"] = a.retry;
      if (!a.result.empty() && a.result != "null") o["result"] = JsonOrNull(a.result);
    }
    items.push_back(std::move(o));
  }
  auto body = Call("POST", "/v1/acks", JsonText(json::object{{"acks", std::move(items)}}));
  return Decode<std::vector<AckResult>>(body, [&](const json::value& v) -> StatusOr<std::vector<AckResult>> {
    std::vector<AckResult> out;
    for (const json::value& r : v.at("results").as_array()) {
      AckResult a;
      a.id = std::string(r.at("id").as_string());
      if (r.at("ok").as_bool()) {
        if (const json::value* st = r.as_object().if_contains("state"); st && st->is_string()) {
          a.state = ParseTaskState(st->as_string());
        }
      } else {
        const json::value& e = r.at("error");
        std::string message(e.at("message").as_string());
        auto code = CodeNamed(e.at("code").as_string());
        a.status = Status(code.value_or(StatusCode::kInternal), std::move(message));
      }
      out.push_back(std::move(a));
    }
    if (out.size() != acks.size()) {
      return Internal("the server answered " + std::to_string(out.size()) + " of " +
                      std::to_string(acks.size()) + " acks");
    }
    return out;
  });
}

StatusOr<std::vector<QueueInfo>> Client::Queues() {
  return Decode<std::vector<QueueInfo>>(
      Call("GET", "/v1/queues"), [](const json::value& v) -> StatusOr<std::vector<QueueInfo>> {
        std::vector<QueueInfo> out;
        for (const json::value& q : v.at("queues").as_array()) {
          auto info = DecodeQueue(q);
          if (!info.ok()) return info.status();
          out.push_back(std::move(*info));
        }
        return out;
      });
}

StatusOr<QueueInfo> Client::GetQueue(const std::string& name) {
  return Decode<QueueInfo>(Call("GET", "/v1/queues/" + UrlEncode(name)),
                           [](const json::value& v) { return DecodeQueue(v); });
}

StatusOr<QueueInfo> Client::PatchQueue(const std::string& name, const std::string& patch_json) {
  return Decode<QueueInfo>(Call("PATCH", "/v1/queues/" + UrlEncode(name), patch_json),
                           [](const json::value& v) { return DecodeQueue(v); });
}

void Client::Interrupt() {
  ++interrupts_;
  http_->CancelAll();
}
void Client::Shutdown() {
  ++interrupts_;
  http_->CancelAll(/*forever=*/true);
}

std::future<StatusOr<Task>> Client::WaitAsync(const std::string& id,
                                             std::chrono::milliseconds timeout) {
  return std::async(std::launch::async, [this, id, timeout] { return Wait(id, timeout); });
}

std::future<StatusOr<WorkflowInfo>> Client::WaitWorkflowAsync(const std::string& id,
                                                             std::chrono::milliseconds timeout) {
  return std::async(std::launch::async, [this, id, timeout] { return WaitWorkflow(id, timeout); });
}

namespace {

// The task fields a stream event carries (server/change_feed.cc).
Task StreamTask(const json::object& o) {
  Task t;
  t.id = JsonString(o, "id");
  t.ns = JsonString(o, "namespace");
  t.queue = JsonString(o, "queue");
  t.type = JsonString(o, "type");
  t.state = ParseTaskState(JsonString(o, "state")).value_or(TaskState::kReady);
  t.attempts = static_cast<std::int32_t>(JsonInt(o, "attempts"));
  t.max_attempts = static_cast<std::int32_t>(JsonInt(o, "max_attempts"));
  t.workflow = JsonString(o, "workflow");
  t.node = JsonString(o, "node");
  t.worker = JsonString(o, "worker");
  t.error = JsonString(o, "error");
  if (const json::value* r = o.if_contains("result")) t.result = JsonText(*r);
  t.updated_at = ParseRfc3339(JsonString(o, "updated_at")).value_or(0);
  t.finished_at = ParseRfc3339(JsonString(o, "finished_at")).value_or(0);
  return t;
}

// Server-sent events, fed as bytes arrive: calls `on_event(id, event,
// data)` for each complete event.
class SseParser {
 public:
  template <typename Fn>
  bool Feed(std::string_view bytes, Fn&& on_event) {
    pending_.append(bytes);
    std::size_t start = 0;
    for (;;) {
      const std::size_t nl = pending_.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(pending_.data() + start, nl - start);
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {  // the end of an event
        if (!data_.empty() || !event_.empty()) {
          if (!data_.empty() && data_.back() == '\n') data_.pop_back();
          const bool go_on = on_event(id_, event_.empty() ? "message" : event_, data_);
          event_.clear();
          data_.clear();
          if (!go_on) {
            pending_.erase(0, start);
            return false;
          }
        }
        continue;
      }
      if (line.front() == ':') continue;  // a comment: keep-alive
      const std::size_t colon = line.find(':');
      std::string_view field = line.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (field == "id") id_ = value;
      if (field == "event") event_ = value;
      if (field == "data") {
        data_.append(value);
        data_.push_back('\n');
      }
    }
    pending_.erase(0, start);
    return true;
  }

 private:
  std::string pending_, id_, event_, data_;
};

}  // namespace

Status Client::Watch(const WatchFilter& filter,
                     const std::function<bool(const TaskChange&)>& on_change,
                     std::string last_event_id) {
  const std::uint64_t interrupts = interrupts_.load();
  std::string q;
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{"queue", &filter.queue},
                                    {"workflow", &filter.workflow},
                                    {"task", &filter.task}}) {
    if (value->empty()) continue;
    q += (q.empty() ? "" : "&") + std::string(name) + "=" + UrlEncode(*value);
  }
  const std::string target = Target("/v1/stream", q);
  int failures = 0;
  for (;;) {
    bool stopped = false;
    Status broken;
    SseParser parser;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!last_event_id.empty()) headers.emplace_back("Last-Event-ID", last_event_id);
    // The server writes a keep-alive every 15 s: a minute of silence is a
    // dead connection.
    auto r = http_->Stream(target, headers, std::chrono::seconds(60), [&](std::string_view bytes) {
      failures = 0;
      return parser.Feed(bytes, [&](const std::string& id, const std::string& event,
                                    const std::string& data) {
        TaskChange change;
        change.event_id = id;
        boost::system::error_code ec;
        json::value v = json::parse(data, ec);
        if (ec || !v.is_object()) {
          broken = Internal("the stream sent an unreadable event: " + data.substr(0, 200));
          return false;
        }
        if (event == "reset") {
          change.reset = true;
          change.reset_reason = JsonString(v.as_object(), "reason");
        } else if (event == "task") {
          change.task = StreamTask(v.as_object());
        } else {
          return true;  // an event this client does not know: skip it
        }
        if (!id.empty()) last_event_id = id;
        if (!on_change(change)) {
          stopped = true;
          return false;
        }
        return true;
      });
    });
    if (!broken.ok()) return broken;
    if (stopped) return Status::Ok();
    if (interrupts_.load() != interrupts) return Unavailable("GET /v1/stream: interrupted");
    if (r.ok() && r->status != 0 && r->status / 100 != 2) {
      return FromReply(HttpReply{r->status, r->body, r->retry_after});
    }
    // The connection dropped or the server closed it (a restart): go on
    // from the last event, at once the first time, then once a second.
    if (failures++ > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    if (interrupts_.load() != interrupts) return Unavailable("GET /v1/stream: interrupted");
  }
}

Status Client::Health() {
  auto body = Call("GET", "/healthz");
  return body.ok() ? Status::Ok() : body.status();
}

Status Client::Ready() {
  auto body = Call("GET", "/readyz");
  return body.ok() ? Status::Ok() : body.status();
}

}  // namespace dray
