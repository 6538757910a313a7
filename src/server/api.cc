#include "server/api.h"

#include <boost/json.hpp>
#include <array>
#include <charconv>
#include <map>

#include "core/ids.h"
#include "core/json_codec.h"
#include "core/json_writer.h"
#include "core/state_machine.h"
#include "core/time_format.h"
#include "server/api_util.h"

namespace json = boost::json;

namespace dray {
namespace {

// A result, serialized, within its bound.
StatusOr<std::string> ResultField(const json::object& o, const Limits& limits,
                                  std::string_view where = "") {
  const json::value* v = o.if_contains("result");
  if (!v) return std::string("null");
  DRAY_RETURN_IF_ERROR(
      CheckFinite(*v, std::string(where) + (where.empty() ? "" : ".") + "result"));
  std::string text = JsonText(*v);
  if (text.size() > limits.max_result_bytes) {
    return OutOfRange("field '" + std::string(where) + (where.empty() ? "" : ".") + "result' is " +
                      std::to_string(text.size()) + " bytes; the limit is " +
                      std::to_string(limits.max_result_bytes));
  }
  return text;
}

// A failure's optional result: "" when absent.
StatusOr<std::string> FailureResult(const json::object& o, const Limits& limits,
                                    std::string_view where = "") {
  if (!o.contains("result")) return std::string();
  return ResultField(o, limits, where);
}

std::string CutError(std::string e, const Limits& limits) {
  if (e.size() > limits.max_error_bytes) e.resize(limits.max_error_bytes);
  return e;
}

json::object EncodeQueue(const QueueInfo& q) {
  json::object counts;
  for (TaskState s : {TaskState::kScheduled, TaskState::kBlocked, TaskState::kReady,
                      TaskState::kRunning, TaskState::kSucceeded, TaskState::kFailed,
                      TaskState::kCancelled}) {
    auto it = q.counts.find(s);
    counts[TaskStateName(s)] = it == q.counts.end() ? 0 : it->second;
  }
  return {{"namespace", q.ns},
          {"name", q.name},
          {"settings", EncodeQueueSettings(q.settings)},
          {"counts", std::move(counts)}};
}

// {"tasks":[task + "lease":{"token","expires_at"}, ...]}, written directly.
std::string LeasedTasksJson(const std::vector<LeasedTask>& leased) {
  std::string out;
  out.reserve(64 + leased.size() * 700);
  out.append("{\"tasks\":[");
  for (std::size_t i = 0; i < leased.size(); ++i) {
    const LeasedTask& l = leased[i];
    if (i) out.push_back(',');
    AppendTaskJson(l.task, &out, /*close=*/false);
    out.append(",\"lease\":{\"token\":");
    AppendJsonString(l.lease.token, &out);
    out.append(",\"expires_at\":\"");
    out.append(FormatRfc3339(l.lease.expires_at));
    out.append("\"}");
    if (!l.parents.empty()) {
      out.append(",\"parents\":");
      AppendParentsJson(l.parents, &out);
    }
    if (!l.gpu_devices.empty()) {
      out.append(",\"gpu_devices\":[");
      for (std::size_t d = 0; d < l.gpu_devices.size(); ++d) {
        if (d) out.push_back(',');
        AppendJsonString(l.gpu_devices[d], &out);
      }
      out.push_back(']');
    }
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

// A page of a listing: {"<field>": [item, ...], "next_cursor": "..." | null},
// each item written by `append(item, &out)`.
template <typename T, typename Append>
std::string PageJson(std::string_view field, const std::vector<T>& items,
                     const std::string& next_cursor, Append append) {
  std::string body = "{";
  AppendJsonString(field, &body);
  body.append(":[");
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) body.push_back(',');
    append(items[i], &body);
  }
  body.append("],\"next_cursor\":");
  if (next_cursor.empty()) {
    body.append("null");
  } else {
    AppendJsonString(next_cursor, &body);
  }
  body.push_back('}');
  return body;
}

// Results up to this size are shown whole in a workflow's task list.
constexpr std::size_t kWorkflowResultBytes = 1024;

// GET /v1/workflows/{id}: the workflow, counts of its tasks by state, and
// each task in brief (names for dependencies inside the workflow).
std::string WorkflowViewJson(const WorkflowView& v, bool with_tasks) {
  std::string out;
  out.reserve(256 + v.tasks.size() * 320);
  AppendWorkflowJson(v.workflow, &out, /*close=*/false);
  if (!with_tasks) {
    out.push_back('}');
    return out;
  }
  std::map<std::string_view, std::string_view> names;  // id -> node name
  std::array<std::int64_t, 8> counts{};
  for (const Task& t : v.tasks) {
    names.emplace(t.id, t.node);
    counts[static_cast<std::size_t>(t.state)]++;
  }
  out.append(",\"counts\":{");
  bool first = true;
  for (TaskState st : kAllTaskStates) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(TaskStateName(st), &out);
    out.push_back(':');
    out.append(std::to_string(counts[static_cast<std::size_t>(st)]));
  }
  out.append("},\"tasks\":[");
  for (std::size_t i = 0; i < v.tasks.size(); ++i) {
    const Task& t = v.tasks[i];
    if (i) out.push_back(',');
    json::object o{{"name", t.node},
                   {"id", t.id},
                   {"state", TaskStateName(t.state)},
                   {"queue", t.queue},
                   {"type", t.type},
                   {"attempts", t.attempts},
                   {"created_at", FormatRfc3339(t.created_at)}};
    json::array deps;
    for (const std::string& d : t.depends_on) {
      auto it = names.find(d);
      deps.push_back(json::string(it == names.end() ? std::string_view(d) : it->second));
    }
    o["depends_on"] = std::move(deps);
    if (t.on_dep_failure != DepFailure::kCancel) o["on_failure"] = DepFailureName(t.on_dep_failure);
    if (!t.history.empty()) o["started_at"] = FormatRfc3339(t.history.front().started_at);
    o["finished_at"] = t.finished_at ? json::value(FormatRfc3339(t.finished_at)) : nullptr;
    if (!t.error.empty()) o["error"] = t.error;
    if (!t.result.empty()) {
      if (t.result.size() <= kWorkflowResultBytes) {
        o["result"] = JsonOrNull(t.result);
      } else {
        o["result_bytes"] = t.result.size();  // GET /v1/tasks/{id} has it whole
      }
    }
    if (!t.wait_reason.empty()) {
      o["wait_reason"] = t.wait_reason;
      o["wait_detail"] = t.wait_detail;
    }
    out.append(JsonText(o));
  }
  out.append("]}");
  return out;
}

// Answers `respond` with the task, or the error.
Callback<Task> TaskResponder(Responder respond, int status = 200) {
  return [respond = std::move(respond), status](const StatusOr<Task>& r) {
    if (!r.ok()) return respond(ErrorResponse(r.status()));
    respond(HttpResponse::Json(status, TaskToJson(*r)));
  };
}

class Api {
 public:
  Api(TaskService* service, ApiOptions options) : service_(service), opts_(options) {}

  void SubmitTasks(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    // Refused before the body is parsed: under overload, refusing must cost
    // far less than accepting (Submit checks again, under its lock).
    if (Status s = service_->Admission(); !s.ok()) return respond(ErrorResponse(s));
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    auto decoded = DecodeSubmit(*body, opts_.limits);
    if (!decoded.ok()) return respond(ErrorResponse(decoded.status()));
    // The query's namespace applies to specs that do not name their own.
    const json::object& o = body->as_object();
    const json::array* batch = decoded->batch ? &o.at("tasks").as_array() : nullptr;
    for (std::size_t i = 0; i < decoded->specs.size(); ++i) {
      const json::object& spec = batch ? (*batch)[i].as_object() : o;
      if (!FindField(spec, "namespace")) decoded->specs[i].ns = *ns;
    }
    const bool is_batch = decoded->batch;
    service_->Submit(std::move(decoded->specs), [respond = std::move(respond), is_batch](
                                                    StatusOr<std::vector<SubmitOutcome>> r) {
      if (!r.ok()) return respond(ErrorResponse(r.status()));
      if (!is_batch) {
        const SubmitOutcome& s = r->front();
        return respond(JsonResponse(s.created ? 201 : 200,
                                    json::object{{"id", s.id}, {"created", s.created}}));
      }
      json::array ids, created;
      bool any_created = false;
      for (const SubmitOutcome& s : *r) {
        ids.push_back(json::string(s.id));
        created.push_back(s.created);
        any_created |= s.created;
      }
      respond(JsonResponse(any_created ? 201 : 200,
                           json::object{{"ids", std::move(ids)}, {"created", std::move(created)}}));
    });
  }

  // POST /v1/tasks/broadcast: one copy per live matching worker.
  void Broadcast(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    if (Status s = service_->Admission(); !s.ok()) return respond(ErrorResponse(s));
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    auto spec = DecodeTaskSpec(*body, opts_.limits);
    if (!spec.ok()) return respond(ErrorResponse(spec.status()));
    if (!FindField(body->as_object(), "namespace")) spec->ns = *ns;
    service_->Broadcast(std::move(*spec), [respond = std::move(respond)](
                                              StatusOr<std::vector<BroadcastCopy>> r) {
      if (!r.ok()) return respond(ErrorResponse(r.status()));
      json::array tasks;
      bool created = false;
      for (const BroadcastCopy& c : *r) {
        tasks.push_back(json::object{{"id", c.id},
                                     {"worker", c.worker},
                                     {"shard_index", c.shard_index},
                                     {"created", c.created}});
        created |= c.created;
      }
      respond(JsonResponse(created ? 201 : 200,
                           json::object{{"shard_total", static_cast<std::int64_t>(r->size())},
                                        {"tasks", std::move(tasks)}}));
    });
  }

  void GetTask(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto wait = IntParam(req, "wait_ms", 0, 0, opts_.max_wait_ms);
    if (!wait.ok()) return respond(ErrorResponse(wait.status()));
    const std::string& id = req.params.at("id");
    if (!IsValidId(id)) return respond(ErrorResponse(NotFound("no task '" + id + "'")));
    service_->Get(*ns, id, *wait, TaskResponder(std::move(respond)));
  }

  void ListTasks(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    TaskQuery q;
    q.ns = *ns;
    q.queue = QueryParam(req, "queue");
    q.type = QueryParam(req, "type");
    q.cursor = QueryParam(req, "cursor");
    if (std::string st = QueryParam(req, "state"); !st.empty()) {
      q.state = ParseTaskState(st);
      if (!q.state) {
        return respond(ErrorResponse(InvalidArgument(
            "query parameter 'state' must be one of scheduled, blocked, ready, running, "
            "succeeded, failed, cancelled")));
      }
    }
    auto limit = IntParam(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return respond(ErrorResponse(limit.status()));
    q.limit = static_cast<std::size_t>(*limit);
    std::string order = QueryParam(req, "order");
    if (!order.empty() && order != "asc" && order != "desc") {
      return respond(ErrorResponse(InvalidArgument("query parameter 'order' must be asc or desc")));
    }
    q.newest_first = order != "asc";
    q.max_bytes = opts_.limits.max_body_bytes;  // an answer no larger than a request may be
    auto page = service_->List(q);
    if (!page.ok()) return respond(ErrorResponse(page.status()));
    respond(HttpResponse::Json(
        200, PageJson("tasks", page->tasks, page->next_cursor,
                      [](const Task& t, std::string* out) { AppendTaskJson(t, out); })));
  }

  void CancelOrRetry(HttpRequest&& req, Responder respond, bool retry) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ObjectBody(req);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    if (Status s = UnknownFields(*body, {}); !s.ok()) return respond(ErrorResponse(s));
    const std::string& id = req.params.at("id");
    if (!IsValidId(id)) return respond(ErrorResponse(NotFound("no task '" + id + "'")));
    if (retry) {
      service_->Retry(*ns, id, TaskResponder(std::move(respond)));
    } else {
      service_->Cancel(*ns, id, TaskResponder(std::move(respond)));
    }
  }

  void SubmitWorkflow(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    if (Status s = service_->Admission(); !s.ok()) return respond(ErrorResponse(s));
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    auto spec = DecodeWorkflowSpec(*body, opts_.limits);
    if (!spec.ok()) return respond(ErrorResponse(spec.status()));
    spec->ns = *ns;
    service_->SubmitWorkflow(std::move(*spec), [respond = std::move(respond)](
                                                   StatusOr<WorkflowOutcome> r) {
      if (!r.ok()) return respond(ErrorResponse(r.status()));
      std::string out;
      out.reserve(128 + r->tasks.size() * 64);
      out.append("{\"workflow\":");
      AppendWorkflowJson(r->workflow, &out);
      out.append(",\"tasks\":{");
      for (std::size_t i = 0; i < r->tasks.size(); ++i) {
        if (i) out.push_back(',');
        AppendJsonString(r->tasks[i].first, &out);
        out.push_back(':');
        AppendJsonString(r->tasks[i].second, &out);
      }
      out.append("}}");
      respond(HttpResponse::Json(201, std::move(out)));
    });
  }

  void GetWorkflow(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    const std::string& id = req.params.at("id");
    if (!IsValidId(id)) return respond(ErrorResponse(NotFound("no workflow '" + id + "'")));
    auto tasks = IntParam(req, "tasks", 1, 0, 1);
    if (!tasks.ok()) return respond(ErrorResponse(tasks.status()));
    auto wait = IntParam(req, "wait_ms", 0, 0, opts_.max_wait_ms);
    if (!wait.ok()) return respond(ErrorResponse(wait.status()));
    const bool with_tasks = *tasks == 1;
    service_->GetWorkflow(*ns, id, with_tasks, *wait,
                          [respond = std::move(respond), with_tasks](StatusOr<WorkflowView> r) {
                            if (!r.ok()) return respond(ErrorResponse(r.status()));
                            respond(HttpResponse::Json(200, WorkflowViewJson(*r, with_tasks)));
                          });
  }

  void ListWorkflows(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    WorkflowQuery q;
    q.ns = *ns;
    q.name = QueryParam(req, "name");
    q.cursor = QueryParam(req, "cursor");
    if (std::string st = QueryParam(req, "state"); !st.empty()) {
      q.state = ParseWorkflowState(st);
      if (!q.state) {
        return respond(ErrorResponse(InvalidArgument(
            "query parameter 'state' must be one of running, succeeded, failed, cancelled")));
      }
    }
    auto limit = IntParam(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return respond(ErrorResponse(limit.status()));
    q.limit = static_cast<std::size_t>(*limit);
    auto page = service_->ListWorkflows(q);
    if (!page.ok()) return respond(ErrorResponse(page.status()));
    respond(HttpResponse::Json(
        200, PageJson("workflows", page->workflows, page->next_cursor,
                      [](const Workflow& w, std::string* out) { AppendWorkflowJson(w, out); })));
  }

  void CancelWorkflow(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ObjectBody(req);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    if (Status s = UnknownFields(*body, {}); !s.ok()) return respond(ErrorResponse(s));
    const std::string& id = req.params.at("id");
    if (!IsValidId(id)) return respond(ErrorResponse(NotFound("no workflow '" + id + "'")));
    service_->CancelWorkflow(*ns, id, [respond = std::move(respond)](StatusOr<Workflow> r) {
      if (!r.ok()) return respond(ErrorResponse(r.status()));
      std::string out;
      AppendWorkflowJson(*r, &out);
      respond(HttpResponse::Json(200, std::move(out)));
    });
  }

  void Lease(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ObjectBody(req);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    const json::object& o = *body;
    if (Status s = UnknownFields(o, {"worker", "queues", "max", "wait_ms", "lease_ms"}); !s.ok()) {
      return respond(ErrorResponse(s));
    }
    LeaseRequest lr;
    lr.ns = *ns;
    auto worker = StringField(o, "worker", true, opts_.limits.max_name_bytes);
    if (!worker.ok()) return respond(ErrorResponse(worker.status()));
    lr.worker = std::move(*worker);
    const json::value* queues = FindField(o, "queues");
    if (!queues || !queues->is_array() || queues->get_array().empty()) {
      return respond(ErrorResponse(
          InvalidArgument("field 'queues' must be a non-empty array of queue names")));
    }
    if (queues->get_array().size() > 256) {
      return respond(ErrorResponse(InvalidArgument("field 'queues' names more than 256 queues")));
    }
    for (std::size_t i = 0; i < queues->get_array().size(); ++i) {
      const json::value& q = queues->get_array()[i];
      std::string field = "queues[" + std::to_string(i) + "]";
      auto name = ReadString(q, field, opts_.limits.max_name_bytes);
      if (!name.ok()) return respond(ErrorResponse(name.status()));
      if (Status s = ValidateName(field, *name, opts_.limits); !s.ok()) {
        return respond(ErrorResponse(s));
      }
      lr.queues.push_back(std::move(*name));
    }
    auto max = IntField(o, "max", 1, 1, static_cast<std::int64_t>(opts_.limits.max_batch));
    auto wait = IntField(o, "wait_ms", 0, 0, opts_.max_wait_ms);
    auto lease_ms = IntField(o, "lease_ms", 0, 100, 86'400'000);
    for (const Status& s : {max.status(), wait.status(), lease_ms.status()}) {
      if (!s.ok()) return respond(ErrorResponse(s));
    }
    lr.max = static_cast<std::size_t>(*max);
    lr.lease_ms = *lease_ms;
    TaskService::AbandonHook on_abandon;
    if (req.gone) {
      on_abandon = [gone = req.gone](std::function<void()> fn) { gone->OnGone(std::move(fn)); };
    }
    service_->Lease(std::move(lr), *wait, [respond = std::move(respond)](
                                              StatusOr<std::vector<LeasedTask>> r) {
      if (!r.ok()) return respond(ErrorResponse(r.status()));
      respond(HttpResponse::Json(200, LeasedTasksJson(*r)));
    }, on_abandon);
  }

  // The common start of heartbeat, complete and fail.
  struct WorkerCall {
    std::string ns;
    std::string id;
    std::string token;
    json::object body;
  };
  StatusOr<WorkerCall> DecodeWorkerCall(const HttpRequest& req,
                                        std::initializer_list<std::string_view> fields) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return ns.status();
    auto body = ObjectBody(req);
    if (!body.ok()) return body.status();
    DRAY_RETURN_IF_ERROR(UnknownFields(*body, fields));
    auto token = StringField(*body, "lease", true, 64);
    if (!token.ok()) return token.status();
    const std::string& id = req.params.at("id");
    if (!IsValidId(id)) return NotFound("no task '" + id + "'");
    return WorkerCall{*ns, id, std::move(*token), std::move(*body)};
  }

  void Heartbeat(HttpRequest&& req, Responder respond) {
    auto call = DecodeWorkerCall(req, {"lease", "lease_ms"});
    if (!call.ok()) return respond(ErrorResponse(call.status()));
    auto lease_ms = IntField(call->body, "lease_ms", 0, 100, 86'400'000);
    if (!lease_ms.ok()) return respond(ErrorResponse(lease_ms.status()));
    service_->Heartbeat(call->ns, call->id, call->token, *lease_ms,
                        [respond = std::move(respond)](StatusOr<HeartbeatOutcome> r) {
                          if (!r.ok()) return respond(ErrorResponse(r.status()));
                          respond(JsonResponse(
                              200, json::object{{"expires_at", FormatRfc3339(r->expires_at)},
                                                {"cancel_requested", r->cancel_requested}}));
                        });
  }

  void Complete(HttpRequest&& req, Responder respond) {
    auto call = DecodeWorkerCall(req, {"lease", "result"});
    if (!call.ok()) return respond(ErrorResponse(call.status()));
    auto result = ResultField(call->body, opts_.limits);
    if (!result.ok()) return respond(ErrorResponse(result.status()));
    service_->Complete(call->ns, call->id, call->token, std::move(*result),
                       TaskResponder(std::move(respond)));
  }

  void Fail(HttpRequest&& req, Responder respond) {
    auto call = DecodeWorkerCall(req, {"lease", "error", "retry", "result"});
    if (!call.ok()) return respond(ErrorResponse(call.status()));
    auto error = StringField(call->body, "error", false, 1 << 30, "", Empty::kAllowed);
    auto retry = BoolField(call->body, "retry", true);
    auto result = FailureResult(call->body, opts_.limits);
    for (const Status& s : {error.status(), retry.status(), result.status()}) {
      if (!s.ok()) return respond(ErrorResponse(s));
    }
    std::string message = error->empty() ? "failed without a message" : *error;
    service_->Fail(call->ns, call->id, call->token, CutError(std::move(message), opts_.limits),
                   *retry, std::move(*result), TaskResponder(std::move(respond)));
  }

  void Acks(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ObjectBody(req);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    if (Status s = UnknownFields(*body, {"acks"}); !s.ok()) return respond(ErrorResponse(s));
    const json::value* acks = FindField(*body, "acks");
    if (!acks || !acks->is_array()) {
      return respond(ErrorResponse(InvalidArgument("field 'acks' must be an array")));
    }
    const json::array& a = acks->get_array();
    if (a.size() > opts_.limits.max_batch) {
      return respond(ErrorResponse(OutOfRange("field 'acks' holds " + std::to_string(a.size()) +
                                              " items; the limit is " +
                                              std::to_string(opts_.limits.max_batch))));
    }
    std::vector<AckItem> items;
    items.reserve(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      std::string where = "acks[" + std::to_string(i) + "]";
      if (!a[i].is_object()) {
        return respond(ErrorResponse(InvalidArgument("field '" + where + "' must be an object")));
      }
      const json::object& o = a[i].get_object();
      if (Status s = UnknownFields(o, {"id", "lease", "result", "error", "retry"}, where);
          !s.ok()) {
        return respond(ErrorResponse(s));
      }
      AckItem item;
      auto id = StringField(o, "id", true, 64, where);
      auto token = StringField(o, "lease", true, 64, where);
      auto retry = BoolField(o, "retry", true, where);
      for (const Status& s : {id.status(), token.status(), retry.status()}) {
        if (!s.ok()) return respond(ErrorResponse(s));
      }
      item.id = std::move(*id);
      item.token = std::move(*token);
      item.retry = *retry;
      if (FindField(o, "error")) {
        auto error = StringField(o, "error", false, 1 << 30, where, Empty::kAllowed);
        if (!error.ok()) return respond(ErrorResponse(error.status()));
        auto result = FailureResult(o, opts_.limits, where);
        if (!result.ok()) return respond(ErrorResponse(result.status()));
        item.result = std::move(*result);
        item.success = false;
        item.error = CutError(error->empty() ? "failed without a message" : std::move(*error),
                              opts_.limits);
      } else {
        auto result = ResultField(o, opts_.limits, where);
        if (!result.ok()) return respond(ErrorResponse(result.status()));
        item.result = std::move(*result);
      }
      items.push_back(std::move(item));
    }
    service_->Ack(*ns, std::move(items), [respond = std::move(respond)](
                                             StatusOr<std::vector<AckOutcome>> r) {
      if (!r.ok()) return respond(ErrorResponse(r.status()));
      json::array results;
      results.reserve(r->size());
      for (const AckOutcome& o : *r) {
        if (o.status.ok()) {
          results.push_back(json::object{{"id", o.id}, {"ok", true}, {"state", TaskStateName(o.state)}});
        } else {
          results.push_back(json::object{
              {"id", o.id},
              {"ok", false},
              {"error", json::object{{"code", StatusCodeName(o.status.code())},
                                     {"message", o.status.message()}}}});
        }
      }
      respond(JsonResponse(200, json::object{{"results", std::move(results)}}));
    });
  }

  void ListQueues(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto queues = service_->Queues(*ns);
    if (!queues.ok()) return respond(ErrorResponse(queues.status()));
    json::array out;
    for (const QueueInfo& q : *queues) out.push_back(EncodeQueue(q));
    respond(JsonResponse(200, json::object{{"queues", std::move(out)}}));
  }

  void GetQueue(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto q = service_->GetQueue(*ns, req.params.at("name"));
    if (!q.ok()) return respond(ErrorResponse(q.status()));
    respond(JsonResponse(200, EncodeQueue(*q)));
  }

  void PatchQueue(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    const std::string& name = req.params.at("name");
    if (Status s = ValidateName("name", name, opts_.limits); !s.ok()) {
      return respond(ErrorResponse(s));
    }
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    // Validate before touching anything, so that bad input changes nothing.
    QueueSettings probe;
    if (Status s = ApplyQueuePatch(*body, &probe); !s.ok()) return respond(ErrorResponse(s));
    service_->PatchQueue(
        *ns, name, [patch = std::move(*body)](QueueSettings* s) { return ApplyQueuePatch(patch, s); },
        [respond = std::move(respond)](StatusOr<QueueInfo> r) {
          if (!r.ok()) return respond(ErrorResponse(r.status()));
          respond(JsonResponse(200, EncodeQueue(*r)));
        });
  }

  void Ready(HttpRequest&&, Responder respond) {
    Status s = service_->Ready();
    if (s.ok()) return respond(JsonResponse(200, json::object{{"status", "ready"}}));
    respond(JsonResponse(503, json::object{{"status", "unavailable"}, {"reason", s.message()}}));
  }

  // Alive, and which build: it answers while the store refuses writes
  // (/readyz says that).
  void Health(HttpRequest&&, Responder respond) {
    respond(JsonResponse(200, json::object{{"status", "ok"},
                                           {"version", opts_.build.version},
                                           {"revision", opts_.build.revision}}));
  }

  void Metrics(HttpRequest&&, Responder respond) {
    ServiceStats s = service_->stats();
    // The Prometheus convention for what is running: a constant 1 with labels.
    std::string text = "# HELP dray_build_info The running build: version and git revision.\n"
                       "# TYPE dray_build_info gauge\ndray_build_info{version=\"" +
                       opts_.build.version + "\",revision=\"" + opts_.build.revision + "\"} 1\n";
    auto metric = [&text](const char* name, const char* type, const char* help,
                          std::uint64_t value) {
      text += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
              name + " " + std::to_string(value) + "\n";
    };
    metric("dray_live_tasks", "gauge", "Tasks not yet terminal.", static_cast<std::uint64_t>(s.live_tasks));
    metric("dray_schedules", "gauge", "Schedules, paused ones included.",
           static_cast<std::uint64_t>(s.schedules));
    metric("dray_triggers", "gauge", "Triggers, paused ones included.",
           static_cast<std::uint64_t>(s.triggers));
    metric("dray_workers", "gauge", "Registered workers alive.",
           static_cast<std::uint64_t>(s.workers));
    metric("dray_stream_subscribers", "gauge", "Open GET /v1/stream connections.",
           static_cast<std::uint64_t>(s.stream_subscribers));
    metric("dray_schedule_ticks_fired_total", "counter",
           "Schedule ticks that submitted a task, since the server started.", s.ticks_fired);
    metric("dray_schedule_ticks_skipped_total", "counter",
           "Schedule ticks let go by a misfire or overlap policy, since the server started.",
           s.ticks_skipped);
    metric("dray_lease_waiters", "gauge", "Long-poll lease requests waiting.",
           static_cast<std::uint64_t>(s.lease_waiters));
    metric("dray_task_waiters", "gauge", "Requests waiting for a task to finish.",
           static_cast<std::uint64_t>(s.task_waiters));
    metric("dray_commit_batches_total", "counter", "Store transactions committed.",
           static_cast<std::uint64_t>(s.commits.batches));
    metric("dray_commit_entries_total", "counter", "Requests whose writes were committed.",
           static_cast<std::uint64_t>(s.commits.entries));
    metric("dray_commit_mutations_total", "counter", "Rows written.",
           static_cast<std::uint64_t>(s.commits.mutations));
    metric("dray_commit_failures_total", "counter", "Failed commits.",
           static_cast<std::uint64_t>(s.commits.failures));
    metric("dray_commit_backlog", "gauge", "Writes waiting for the commit thread.",
           static_cast<std::uint64_t>(s.commit_backlog));
    metric("dray_submits_refused_overload_total", "counter",
           "Submits refused with 429 because the commit backlog was full.", s.refused_overload);
    metric("dray_disk_full", "gauge", "1 while submits are refused for lack of disk space.",
           s.disk_full ? 1 : 0);
    metric("dray_disk_free_bytes", "gauge", "Free space where the data lives, at the last check.",
           s.disk_free_bytes);
    metric("dray_store_round_trips_total", "counter",
           "Requests to the database server answered (0 on SQLite, which is in-process).",
           s.store_round_trips);
    // Store::Commit's time per batch, as a Prometheus histogram.
    text += "# HELP dray_store_commit_seconds Time the store took to commit a batch.\n"
            "# TYPE dray_store_commit_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < s.commits.commit_seconds.size(); ++i) {
      cumulative += s.commits.commit_seconds[i];
      text += "dray_store_commit_seconds_bucket{le=\"" +
              (i < kCommitSecondsBounds.size() ? JsonText(json::value(kCommitSecondsBounds[i]))
                                               : std::string("+Inf")) +
              "\"} " + std::to_string(cumulative) + "\n";
    }
    text += "dray_store_commit_seconds_sum " +
            JsonText(json::value(static_cast<double>(s.commits.commit_ns) / 1e9)) + "\n";
    text += "dray_store_commit_seconds_count " + std::to_string(cumulative) + "\n";
    HttpResponse r;
    r.status = 200;
    r.body = std::move(text);
    r.content_type = "text/plain; version=0.0.4";
    respond(std::move(r));
  }

 private:
  TaskService* const service_;
  const ApiOptions opts_;
};

}  // namespace

void RegisterApi(Router* router, TaskService* service, ApiOptions options) {
  using boost::beast::http::verb;
  RegisterScheduleApi(router, service, options);
  RegisterEventApi(router, service, options);
  RegisterWorkerApi(router, service, options);
  auto api = std::make_shared<Api>(service, options);
  router->Add(verb::post, "/v1/tasks", Bind(api, &Api::SubmitTasks));
  router->Add(verb::get, "/v1/tasks", Bind(api, &Api::ListTasks));
  router->Add(verb::post, "/v1/tasks/broadcast", Bind(api, &Api::Broadcast));
  router->Add(verb::get, "/v1/tasks/{id}", Bind(api, &Api::GetTask));
  router->Add(verb::post, "/v1/tasks/{id}/cancel", [api](HttpRequest&& req, Responder r) {
    api->CancelOrRetry(std::move(req), std::move(r), false);
  });
  router->Add(verb::post, "/v1/tasks/{id}/retry", [api](HttpRequest&& req, Responder r) {
    api->CancelOrRetry(std::move(req), std::move(r), true);
  });
  router->Add(verb::post, "/v1/tasks/{id}/heartbeat", Bind(api, &Api::Heartbeat));
  router->Add(verb::post, "/v1/tasks/{id}/complete", Bind(api, &Api::Complete));
  router->Add(verb::post, "/v1/tasks/{id}/fail", Bind(api, &Api::Fail));
  router->Add(verb::post, "/v1/leases", Bind(api, &Api::Lease));
  router->Add(verb::post, "/v1/workflows", Bind(api, &Api::SubmitWorkflow));
  router->Add(verb::get, "/v1/workflows", Bind(api, &Api::ListWorkflows));
  router->Add(verb::get, "/v1/workflows/{id}", Bind(api, &Api::GetWorkflow));
  router->Add(verb::post, "/v1/workflows/{id}/cancel", Bind(api, &Api::CancelWorkflow));
  router->Add(verb::post, "/v1/acks", Bind(api, &Api::Acks));
  router->Add(verb::get, "/v1/queues", Bind(api, &Api::ListQueues));
  router->Add(verb::get, "/v1/queues/{name}", Bind(api, &Api::GetQueue));
  router->Add(verb::patch, "/v1/queues/{name}", Bind(api, &Api::PatchQueue));
  router->Add(verb::get, "/healthz", Bind(api, &Api::Health));
  router->Add(verb::get, "/readyz", Bind(api, &Api::Ready));
  router->Add(verb::get, "/metrics", Bind(api, &Api::Metrics));
}

}  // namespace dray
