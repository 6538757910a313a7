// /v1/workers (issue 7): registration, heartbeats and the list of live
// workers. The contract is in docs/http-api.md and api/openapi.json.
#include <boost/json.hpp>

#include "core/json_codec.h"
#include "server/api.h"
#include "server/api_util.h"

namespace json = boost::json;

namespace dray {
namespace {

class WorkerApi {
 public:
  WorkerApi(TaskService* service, ApiOptions opts) : service_(service), opts_(std::move(opts)) {}

  // The worker with the grace it must heartbeat within.
  json::object Encode(const WorkerInfo& w) const {
    json::object o = EncodeWorker(w);
    o["grace_ms"] = service_->worker_grace_ms();
    return o;
  }
  void Answer(const Responder& respond, StatusOr<WorkerInfo> r) const {
    if (!r.ok()) return respond(ErrorResponse(r.status()));
    respond(JsonResponse(200, Encode(*r)));
  }

  void Register(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    auto body = ParseJson(req.body);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    auto spec = DecodeWorkerSpec(*body, opts_.limits);
    if (!spec.ok()) return respond(ErrorResponse(spec.status()));
    spec->ns = *ns;
    service_->RegisterWorker(std::move(*spec), [this, respond](StatusOr<WorkerInfo> r) {
      Answer(respond, std::move(r));
    });
  }

  void Heartbeat(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    service_->WorkerHeartbeat(*ns, req.params.at("id"), [this, respond](StatusOr<WorkerInfo> r) {
      Answer(respond, std::move(r));
    });
  }

  void Get(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    Answer(respond, service_->GetWorker(*ns, req.params.at("id")));
  }

  void List(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    json::array items;
    for (const WorkerInfo& w : service_->Workers(*ns)) items.push_back(Encode(w));
    respond(JsonResponse(200, json::object{{"workers", std::move(items)}}));
  }

  void Deregister(HttpRequest&& req, Responder respond) {
    auto ns = Namespace(req, opts_.limits);
    if (!ns.ok()) return respond(ErrorResponse(ns.status()));
    const std::string id = req.params.at("id");
    service_->DeregisterWorker(*ns, id, DeletedAnswer(std::move(respond), id));
  }

 private:
  TaskService* const service_;
  const ApiOptions opts_;
};

}  // namespace

void RegisterWorkerApi(Router* router, TaskService* service, ApiOptions options) {
  using boost::beast::http::verb;
  auto api = std::make_shared<WorkerApi>(service, std::move(options));
  router->Add(verb::post, "/v1/workers", Bind(api, &WorkerApi::Register));
  router->Add(verb::get, "/v1/workers", Bind(api, &WorkerApi::List));
  router->Add(verb::get, "/v1/workers/{id}", Bind(api, &WorkerApi::Get));
  router->Add(verb::delete_, "/v1/workers/{id}", Bind(api, &WorkerApi::Deregister));
  router->Add(verb::post, "/v1/workers/{id}/heartbeat", Bind(api, &WorkerApi::Heartbeat));
}

}  // namespace dray
