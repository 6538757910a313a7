// /v1/schedules (issue 6): create, read, list, change, pause, resume and
// delete schedules. The contract is in docs/http-api.md and api/openapi.yaml.
#include <algorithm>
#include <boost/json.hpp>

#include "core/json_codec.h"
#include "server/api.h"
#include "server/api_util.h"

namespace json = boost::json;

namespace dray {
namespace {

constexpr std::int64_t kDefaultNext = 5;
constexpr std::int64_t kMaxNext = 100;

// The schedule's fields that PATCH may remove with null.
constexpr std::string_view kRemovable[] = {"name", "start_at", "end_at"};

// The new spec from the current one and a PATCH body: each field given
// replaces the current one (the task template whole); null removes an
// optional field; giving cron drops the interval and the reverse.
StatusOr<ScheduleSpec> MergePatch(const ScheduleSpec& current, const json::object& patch,
                                  const Limits& limits) {
  json::object merged = EncodeScheduleSpec(current);
  for (const auto& [k, v] : patch) {
    if (k == "id") {
      if (!v.is_string() || v.get_string() != current.id) {
        return InvalidArgument("field 'id' cannot change; create a new schedule instead");
      }
      continue;
    }
    if (v.is_null()) {
      if (std::find(std::begin(kRemovable), std::end(kRemovable), k) == std::end(kRemovable)) {
        return InvalidArgument("field '" + std::string(k) +
                               "' cannot be removed; only name, start_at and end_at can");
      }
      merged.erase(k);
      continue;
    }
    if (k == "cron") {
      merged.erase("interval_ms");
      if (!patch.contains("timezone")) merged.erase("timezone");  // UTC unless given
    }
    if (k == "interval_ms") {
      merged.erase("cron");
      merged.erase("timezone");
    }
    merged[k] = v;
  }
  return DecodeScheduleSpec(merged, limits);
}

class ScheduleApi {
 public:
  ScheduleApi(TaskService* service, ApiOptions opts) : service_(service), opts_(std::move(opts)) {}

  static void Answer(const Responder& respond, const StatusOr<Schedule>& r, int status = 200) {
    if (!r.ok()) return respond(ErrorResponse(r.status()));
    respond(JsonResponse(status, EncodeSchedule(*r)));
  }

  void Create(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    auto spec = DecodeScheduleSpec(*body, opts_.limits);
    if (!spec.ok()) return respond(ErrorResponse(spec.status()));
    spec->ns = *ns;
    service_->CreateSchedule(std::move(*spec), [respond](const StatusOr<Schedule>& r) {
      Answer(respond, r, 201);
    });
  }

  void List(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto limit = IntParam(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return respond(ErrorResponse(limit.status()));
    auto next = IntParam(req, "next", 1, 0, kMaxNext);
    if (!next.ok()) return respond(ErrorResponse(next.status()));
    const std::string cursor = QueryParam(req, "cursor");
    auto page = service_->ListSchedules(*ns, cursor, static_cast<std::size_t>(*limit) + 1,
                                        static_cast<std::size_t>(*next));
    std::string next_cursor;
    if (page.size() > static_cast<std::size_t>(*limit)) {
      page.pop_back();
      next_cursor = page.back().spec.id;
    }
    json::array items;
    items.reserve(page.size());
    for (const Schedule& s : page) items.push_back(EncodeSchedule(s));
    respond(JsonResponse(200, PageObject("schedules", std::move(items), next_cursor)));
  }

  void Get(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto next = IntParam(req, "next", kDefaultNext, 0, kMaxNext);
    if (!next.ok()) return respond(ErrorResponse(next.status()));
    Answer(respond, service_->GetSchedule(*ns, req.params.at("id"),
                                          static_cast<std::size_t>(*next)));
  }

  void Patch(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    if (!body->is_object()) {
      return respond(ErrorResponse(InvalidArgument("request body must be a JSON object")));
    }
    Change(*ns, req.params.at("id"), std::move(body->as_object()), std::move(respond));
  }

  void SetPaused(HttpRequest&& req, Responder respond, bool paused) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ObjectBody(req);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    if (Status s = UnknownFields(*body, {}); !s.ok()) return respond(ErrorResponse(s));
    Change(*ns, req.params.at("id"), json::object{{"paused", paused}}, std::move(respond));
  }

  void Delete(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    const std::string id = req.params.at("id");
    service_->DeleteSchedule(*ns, id, DeletedAnswer(std::move(respond), id));
  }

 private:
  void Change(const std::string& ns, const std::string& id, json::object patch,
              Responder respond) {
    service_->PatchSchedule(
        ns, id,
        [patch = std::move(patch), limits = opts_.limits](const ScheduleSpec& current) {
          return MergePatch(current, patch, limits);
        },
        [respond](const StatusOr<Schedule>& r) { Answer(respond, r); });
  }

  TaskService* const service_;
  const ApiOptions opts_;
};

}  // namespace

void RegisterScheduleApi(Router* router, TaskService* service, ApiOptions options) {
  using boost::beast::http::verb;
  auto api = std::make_shared<ScheduleApi>(service, std::move(options));
  router->Add(verb::post, "/v1/schedules", Bind(api, &ScheduleApi::Create));
  router->Add(verb::get, "/v1/schedules", Bind(api, &ScheduleApi::List));
  router->Add(verb::get, "/v1/schedules/{id}", Bind(api, &ScheduleApi::Get));
  router->Add(verb::patch, "/v1/schedules/{id}", Bind(api, &ScheduleApi::Patch));
  router->Add(verb::delete_, "/v1/schedules/{id}", Bind(api, &ScheduleApi::Delete));
  router->Add(verb::post, "/v1/schedules/{id}/pause", [api](HttpRequest&& req, Responder r) {
    api->SetPaused(std::move(req), std::move(r), true);
  });
  router->Add(verb::post, "/v1/schedules/{id}/resume", [api](HttpRequest&& req, Responder r) {
    api->SetPaused(std::move(req), std::move(r), false);
  });
}

}  // namespace dray
