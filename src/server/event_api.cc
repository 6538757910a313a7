// /v1/events and /v1/triggers (issue 6). The contract is in
// docs/http-api.md and api/openapi.json.
#include <boost/json.hpp>

#include "core/json_codec.h"
#include "server/api.h"
#include "server/api_util.h"

namespace json = boost::json;

namespace dray {
namespace {

class EventApi {
 public:
  EventApi(TaskService* service, ApiOptions opts) : service_(service), opts_(std::move(opts)) {}

  static void AnswerTrigger(const Responder& respond, const StatusOr<Trigger>& r, int status = 200) {
    if (!r.ok()) return respond(ErrorResponse(r.status()));
    respond(JsonResponse(status, EncodeTrigger(*r)));
  }

  void Emit(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    if (Status s = service_->Admission(); !s.ok()) return respond(ErrorResponse(s));
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    auto spec = DecodeEventSpec(*body, opts_.limits);
    if (!spec.ok()) return respond(ErrorResponse(spec.status()));
    spec->ns = *ns;
    service_->EmitEvent(std::move(*spec), [respond](StatusOr<TaskService::EventAnswer> r) {
      if (!r.ok()) return respond(ErrorResponse(r.status()));
      json::object o = EncodeEvent(r->event);
      o["duplicate"] = r->duplicate;
      respond(JsonResponse(r->duplicate ? 200 : 201, o));
    });
  }

  void GetEvent(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto e = service_->GetEvent(*ns, req.params.at("id"));
    if (!e.ok()) return respond(ErrorResponse(e.status()));
    respond(JsonResponse(200, EncodeEvent(*e)));
  }

  void CreateTrigger(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    auto spec = DecodeTriggerSpec(*body, opts_.limits);
    if (!spec.ok()) return respond(ErrorResponse(spec.status()));
    spec->ns = *ns;
    service_->CreateTrigger(std::move(*spec), [respond](const StatusOr<Trigger>& r) {
      AnswerTrigger(respond, r, 201);
    });
  }

  void ListTriggers(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto limit = IntParam(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return respond(ErrorResponse(limit.status()));
    auto page = service_->ListTriggers(*ns, QueryParam(req, "cursor"),
                                       static_cast<std::size_t>(*limit) + 1);
    std::string next_cursor;
    if (page.size() > static_cast<std::size_t>(*limit)) {
      page.pop_back();
      next_cursor = page.back().spec.id;
    }
    json::array items;
    for (const Trigger& t : page) items.push_back(EncodeTrigger(t));
    respond(JsonResponse(200, PageObject("triggers", std::move(items), next_cursor)));
  }

  void GetTrigger(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    AnswerTrigger(respond, service_->GetTrigger(*ns, req.params.at("id")));
  }

  void SetPaused(HttpRequest&& req, Responder respond, bool paused) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ObjectBody(req);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    if (Status s = UnknownFields(*body, {}); !s.ok()) return respond(ErrorResponse(s));
    service_->SetTriggerPaused(*ns, req.params.at("id"), paused,
                               [respond](const StatusOr<Trigger>& r) { AnswerTrigger(respond, r); });
  }

  // GET /v1/stream: server-sent events of task changes (server/change_feed.h).
  void Stream(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    ChangeFilter filter;
    filter.ns = *ns;
    filter.queue = QueryParam(req, "queue");
    filter.workflow = QueryParam(req, "workflow");
    filter.task = QueryParam(req, "task");
    for (const std::string* name : {&filter.queue, &filter.workflow, &filter.task}) {
      if (name->size() > 256) {
        return respond(ErrorResponse(InvalidArgument("a stream filter is at most 256 bytes")));
      }
    }
    // EventSource sends the header when it reconnects; the parameter is for
    // a first connection that resumes.
    std::string last = req.header("last-event-id");
    if (last.empty()) last = QueryParam(req, "last_event_id");
    auto out = std::make_shared<HttpStream>();
    if (Status s = service_->Stream(std::move(filter), last, out); !s.ok()) {
      return respond(ErrorResponse(s));
    }
    HttpResponse r;
    r.status = 200;
    r.content_type = "text/event-stream";
    r.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
    r.stream = std::move(out);
    respond(std::move(r));
  }

  void DeleteTrigger(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    const std::string id = req.params.at("id");
    service_->DeleteTrigger(*ns, id, DeletedAnswer(std::move(respond), id));
  }

 private:
  TaskService* const service_;
  const ApiOptions opts_;
};

}  // namespace

void RegisterEventApi(Router* router, TaskService* service, ApiOptions options) {
  using boost::beast::http::verb;
  auto api = std::make_shared<EventApi>(service, std::move(options));
  router->Add(verb::post, "/v1/events", Bind(api, &EventApi::Emit));
  router->Add(verb::get, "/v1/stream", Bind(api, &EventApi::Stream));
  router->Add(verb::get, "/v1/events/{id}", Bind(api, &EventApi::GetEvent));
  router->Add(verb::post, "/v1/triggers", Bind(api, &EventApi::CreateTrigger));
  router->Add(verb::get, "/v1/triggers", Bind(api, &EventApi::ListTriggers));
  router->Add(verb::get, "/v1/triggers/{id}", Bind(api, &EventApi::GetTrigger));
  router->Add(verb::delete_, "/v1/triggers/{id}", Bind(api, &EventApi::DeleteTrigger));
  router->Add(verb::post, "/v1/triggers/{id}/pause", [api](HttpRequest&& req, Responder r) {
    api->SetPaused(std::move(req), std::move(r), true);
  });
  router->Add(verb::post, "/v1/triggers/{id}/resume", [api](HttpRequest&& req, Responder r) {
    api->SetPaused(std::move(req), std::move(r), false);
  });
}

}  // namespace dray
