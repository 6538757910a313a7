// Holds the server's answers to api/openapi.json: every documented operation
// is called against a real server, and each answer must match the schema the
// document gives for its status code.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "support/server_process.h"

namespace dray::testing {
namespace {

namespace json = boost::json;

// A small validator for the subset of JSON Schema the document uses.
class Validator {
 public:
  explicit Validator(const json::value& doc) : doc_(doc) {}

  // Appends a line per mismatch to `errors`.
  void Check(const json::value& schema, const json::value& v, const std::string& path,
             std::vector<std::string>* errors) const {
    const json::object& s = Merged(Resolve(schema)).as_object();
    if (v.is_null() && s.contains("nullable") && s.at("nullable").as_bool()) return;
    if (const json::value* one = s.if_contains("oneOf")) {
      int matches = 0;
      for (const auto& sub : one->as_array()) {
        std::vector<std::string> e;
        Check(sub, v, path, &e);
        matches += e.empty();
      }
      if (matches == 0) errors->push_back(path + ": matches none of oneOf");
    }
    if (const json::value* type = s.if_contains("type")) {
      std::string t(type->as_string());
      bool ok = (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
                (t == "string" && v.is_string()) || (t == "boolean" && v.is_bool()) ||
                (t == "integer" && (v.is_int64() || v.is_uint64())) ||
                (t == "number" && v.is_number());
      if (!ok) {
        errors->push_back(path + ": expected " + t + ", got " + json::serialize(v));
        return;
      }
    }
    if (const json::value* e = s.if_contains("enum")) {
      bool found = false;
      for (const auto& x : e->as_array()) found |= x == v;
      if (!found) errors->push_back(path + ": " + json::serialize(v) + " is not in the enum");
    }
    if (v.is_object()) {
      const json::object& o = v.as_object();
      if (const json::value* req = s.if_contains("required")) {
        for (const auto& r : req->as_array()) {
          if (!o.contains(r.as_string())) {
            errors->push_back(path + ": missing required '" + std::string(r.as_string()) + "'");
          }
        }
      }
      const json::object* props = s.contains("properties") ? &s.at("properties").as_object() : nullptr;
      const json::value* extra = s.if_contains("additionalProperties");
      for (const auto& [k, x] : o) {
        if (props && props->contains(k)) {
          Check(props->at(k), x, path + "." + std::string(k), errors);
        } else if (extra && extra->is_bool() && !extra->as_bool()) {
          errors->push_back(path + ": undocumented property '" + std::string(k) + "'");
        } else if (extra && extra->is_object()) {
          Check(*extra, x, path + "." + std::string(k), errors);
        } else if (props) {
          errors->push_back(path + ": undocumented property '" + std::string(k) + "'");
        }
      }
    }
    if (v.is_array()) {
      if (const json::value* items = s.if_contains("items")) {
        std::size_t i = 0;
        for (const auto& x : v.as_array()) Check(*items, x, path + "[" + std::to_string(i++) + "]", errors);
      }
    }
  }

  // allOf, folded into one object schema: the union of properties and of
  // required names, so that each part's properties count as documented.
  const json::value& Merged(const json::value& schema) const {
    const json::object& s = schema.as_object();
    if (!s.contains("allOf")) return schema;
    json::object props;
    json::array required;
    for (const auto& part : s.at("allOf").as_array()) {
      const json::object& p = Resolve(part).as_object();
      if (const json::value* pp = p.if_contains("properties")) {
        for (const auto& [k, x] : pp->as_object()) props[k] = x;
      }
      if (const json::value* r = p.if_contains("required")) {
        for (const auto& x : r->as_array()) required.push_back(x);
      }
    }
    merged_.push_back(std::make_unique<json::value>(json::object{
        {"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}}));
    return *merged_.back();
  }

  const json::value& Resolve(const json::value& schema) const {
    const json::value* s = &schema;
    while (s->is_object() && s->as_object().contains("$ref")) {
      std::string ref(s->at("$ref").as_string());  // "#/components/schemas/Name"
      s = &doc_.at("components").at("schemas").at(ref.substr(ref.rfind('/') + 1));
    }
    return *s;
  }

 private:
  const json::value& doc_;
  mutable std::vector<std::unique_ptr<json::value>> merged_;
};

class OpenApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream in(std::string(DRAY_SOURCE_DIR) + "/api/openapi.json");
    std::stringstream ss;
    ss << in.rdbuf();
    doc_ = new json::value(json::parse(ss.str()));
    server_ = new ServerProcess();
    server_->Start();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete doc_;
  }

  // Calls the server and checks the answer against the operation
  // `method template` of the document.
  json::value Call(const std::string& method, const std::string& tmpl, const std::string& target,
                   const std::string& body = "") {
    HttpResult r = conn_.Call(method, target, body);
    std::string m = method;
    for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const json::value* op = doc_->at("paths").as_object().contains(tmpl)
                                ? doc_->at("paths").at(tmpl).as_object().if_contains(m)
                                : nullptr;
    EXPECT_NE(op, nullptr) << method << " " << tmpl << " is not in api/openapi.json";
    if (!op) return r.json();
    covered_.insert(m + " " + tmpl);
    const json::object& responses = op->at("responses").as_object();
    std::string code = std::to_string(r.status);
    const json::value* resp = responses.if_contains(code);
    if (!resp) resp = responses.if_contains("default");
    EXPECT_NE(resp, nullptr) << method << " " << target << ": status " << code << " undocumented";
    if (!resp) return r.json();
    const json::object& content = resp->at("content").as_object();
    if (content.contains("application/json")) {
      std::vector<std::string> errors;
      Validator(*doc_).Check(content.at("application/json").at("schema"), r.json(), "$", &errors);
      for (const auto& e : errors) ADD_FAILURE() << method << " " << target << " -> " << code << ": " << e;
    }
    return r.json();
  }

  static json::value* doc_;
  static ServerProcess* server_;
  static std::set<std::string> covered_;
  HttpConn conn_{server_->port()};
};

json::value* OpenApiTest::doc_ = nullptr;
ServerProcess* OpenApiTest::server_ = nullptr;
std::set<std::string> OpenApiTest::covered_;

TEST_F(OpenApiTest, EveryOperationAnswersAsDocumented) {
  json::value one = Call("POST", "/v1/tasks", "/v1/tasks",
                         R"({"type":"a","queue":"oa","payload":{"x":1},"key":"k","labels":{"l":"v"}})");
  Call("POST", "/v1/tasks", "/v1/tasks", R"({"type":"a","queue":"oa","key":"k"})");
  Call("POST", "/v1/tasks", "/v1/tasks", R"({"tasks":[{"type":"b","queue":"oa"},{"type":"c","queue":"oa","delay_ms":60000}]})");
  Call("POST", "/v1/tasks", "/v1/tasks", R"({"type":5})");
  std::string id(one.at("id").as_string());
  Call("GET", "/v1/tasks/{id}", "/v1/tasks/" + id);
  Call("GET", "/v1/tasks/{id}", "/v1/tasks/" + id + "?wait_ms=1");
  Call("GET", "/v1/tasks", "/v1/tasks?queue=oa&limit=2");
  json::value leased = Call("POST", "/v1/leases", "/v1/leases",
                            R"({"worker":"w","queues":["oa"],"max":2,"wait_ms":0})");
  ASSERT_EQ(leased.at("tasks").as_array().size(), 2u);
  auto token = [&](int i) { return std::string(leased.at("tasks").at(i).at("lease").at("token").as_string()); };
  auto tid = [&](int i) { return std::string(leased.at("tasks").at(i).at("id").as_string()); };
  Call("GET", "/v1/tasks/{id}", "/v1/tasks/" + tid(0));  // running: lease fields
  Call("POST", "/v1/tasks/{id}/heartbeat", "/v1/tasks/" + tid(0) + "/heartbeat",
       R"({"lease":")" + token(0) + R"(","lease_ms":5000})");
  Call("POST", "/v1/tasks/{id}/heartbeat", "/v1/tasks/" + tid(0) + "/heartbeat", R"({"lease":"0"})");
  Call("POST", "/v1/tasks/{id}/complete", "/v1/tasks/" + tid(0) + "/complete",
       R"({"lease":")" + token(0) + R"(","result":[1,2]})");
  Call("POST", "/v1/tasks/{id}/fail", "/v1/tasks/" + tid(1) + "/fail",
       R"({"lease":")" + token(1) + R"(","error":"e","retry":false})");
  Call("POST", "/v1/tasks/{id}/retry", "/v1/tasks/" + tid(1) + "/retry");
  json::value again = Call("POST", "/v1/leases", "/v1/leases", R"({"worker":"w","queues":["oa"]})");
  ASSERT_EQ(again.at("tasks").as_array().size(), 1u);
  Call("POST", "/v1/acks", "/v1/acks",
       R"({"acks":[{"id":")" + std::string(again.at("tasks").at(0).at("id").as_string()) +
           R"(","lease":")" + std::string(again.at("tasks").at(0).at("lease").at("token").as_string()) +
           R"(","result":null},{"id":")" + tid(0) + R"(","lease":"1","error":"x"}]})");
  json::value list = Call("GET", "/v1/tasks", "/v1/tasks?queue=oa&state=scheduled");
  ASSERT_EQ(list.at("tasks").as_array().size(), 1u);
  Call("POST", "/v1/tasks/{id}/cancel",
       "/v1/tasks/" + std::string(list.at("tasks").at(0).at("id").as_string()) + "/cancel");
  Call("GET", "/v1/queues", "/v1/queues");
  Call("GET", "/v1/queues/{name}", "/v1/queues/oa");
  Call("PATCH", "/v1/queues/{name}", "/v1/queues/oa", R"({"paused":true,"backoff":{"initial_ms":5,"max_ms":10}})");
  json::value wf = Call("POST", "/v1/workflows", "/v1/workflows",
                        R"({"name":"w","tasks":[{"name":"a","type":"t","queue":"oaw"},)"
                        R"({"name":"b","type":"t","queue":"oaw","depends_on":["a"],"on_failure":"continue"}]})");
  Call("POST", "/v1/workflows", "/v1/workflows", R"({"tasks":[{"name":"a","type":"t","depends_on":["a"]}]})");
  const std::string wid(wf.at("workflow").at("id").as_string());
  json::value wl = Call("POST", "/v1/leases", "/v1/leases", R"({"worker":"w","queues":["oaw"]})");
  Call("POST", "/v1/tasks/{id}/complete",
       "/v1/tasks/" + std::string(wl.at("tasks").at(0).at("id").as_string()) + "/complete",
       R"({"lease":")" + std::string(wl.at("tasks").at(0).at("lease").at("token").as_string()) +
           R"(","result":{"n":1}})");
  Call("POST", "/v1/leases", "/v1/leases", R"({"worker":"w","queues":["oaw"]})");  // with parents
  Call("GET", "/v1/workflows/{id}", "/v1/workflows/" + wid);
  Call("GET", "/v1/workflows/{id}", "/v1/workflows/" + wid + "?tasks=0");
  Call("GET", "/v1/workflows", "/v1/workflows?state=running");
  Call("POST", "/v1/workflows/{id}/cancel", "/v1/workflows/" + wid + "/cancel");
  Call("GET", "/v1/tasks/{id}", "/v1/tasks/" + std::string(wf.at("tasks").at("b").as_string()));
  Call("POST", "/v1/schedules", "/v1/schedules",
       R"({"id":"oas","cron":"0 2 * * *","timezone":"Europe/Berlin","overlap":"buffer_one",)"
       R"("start_at":"2030-01-01T00:00:00Z","task":{"type":"t","queue":"oas","payload":{"a":1}}})");
  Call("POST", "/v1/schedules", "/v1/schedules", R"({"cron":"*/0 * * * *","task":{"type":"t"}})");
  Call("GET", "/v1/schedules", "/v1/schedules?limit=1");
  Call("GET", "/v1/schedules/{id}", "/v1/schedules/oas?next=3");
  Call("PATCH", "/v1/schedules/{id}", "/v1/schedules/oas", R"({"interval_ms":60000,"start_at":null})");
  Call("POST", "/v1/schedules/{id}/pause", "/v1/schedules/oas/pause");
  Call("POST", "/v1/schedules/{id}/resume", "/v1/schedules/oas/resume");
  Call("DELETE", "/v1/schedules/{id}", "/v1/schedules/oas");
  Call("GET", "/v1/schedules/{id}", "/v1/schedules/oas");
  Call("POST", "/v1/triggers", "/v1/triggers",
       R"({"id":"oat","on":{"event":"oa.e","match":{"k":1}},"task":{"type":"t","queue":"oat"}})");
  Call("POST", "/v1/triggers", "/v1/triggers",
       R"({"id":"oat2","on":{"task":{"queue":"oat","states":["failed"]}},"task":{"type":"t","queue":"oat2"}})");
  Call("POST", "/v1/triggers", "/v1/triggers", R"({"on":{"event":"x"}})");
  Call("GET", "/v1/triggers", "/v1/triggers?limit=1");
  Call("GET", "/v1/triggers/{id}", "/v1/triggers/oat");
  Call("POST", "/v1/triggers/{id}/pause", "/v1/triggers/oat2/pause");
  Call("POST", "/v1/triggers/{id}/resume", "/v1/triggers/oat2/resume");
  Call("POST", "/v1/events", "/v1/events", R"({"name":"oa.e","id":"oa-1","payload":{"k":1}})");
  Call("POST", "/v1/events", "/v1/events", R"({"name":"oa.e","id":"oa-1","payload":{"k":1}})");
  Call("POST", "/v1/events", "/v1/events", R"({"id":"no-name"})");
  Call("GET", "/v1/events/{id}", "/v1/events/oa-1");
  Call("GET", "/v1/events/{id}", "/v1/events/none");
  Call("DELETE", "/v1/triggers/{id}", "/v1/triggers/oat");
  // The stream's refusals; the stream itself never ends (stream_test.cc).
  Call("GET", "/v1/stream", "/v1/stream?task=01a22b7b-819b-70b5-bacb-f1dfb4805c40");
  Call("GET", "/v1/stream", "/v1/stream?namespace=bad%20name");
  Call("POST", "/v1/workers", "/v1/workers",
       R"({"id":"oaw","capacity":{"cpu":1000,"gpu":1},"gpu_devices":["0"],"labels":{"zone":"a"},"queues":["oa"]})");
  Call("POST", "/v1/workers", "/v1/workers", R"({"capacity":{}})");
  Call("GET", "/v1/workers", "/v1/workers");
  Call("GET", "/v1/workers/{id}", "/v1/workers/oaw");
  Call("POST", "/v1/workers/{id}/heartbeat", "/v1/workers/oaw/heartbeat");
  // Placement (docs/placement.md): a placed task, leased with its GPU; a
  // broadcast copy; one no worker could run.
  json::value placed = Call("POST", "/v1/tasks", "/v1/tasks",
      R"({"type":"t","queue":"oa","resources":{"cpu":500,"gpu":1},"require":["zone=a",)"
      R"({"key":"arch","op":"not_in","values":["arm64"]}],"prefer":[{"key":"zone","value":"a","weight":5}],)"
      R"("affinity_key":"u-1"})");
  Call("POST", "/v1/leases", "/v1/leases", R"({"worker":"oaw","queues":["oa"]})");
  Call("GET", "/v1/tasks/{id}", "/v1/tasks/" + std::string(placed.at("id").as_string()));
  Call("GET", "/v1/workers/{id}", "/v1/workers/oaw");
  Call("POST", "/v1/tasks/broadcast", "/v1/tasks/broadcast", R"({"type":"t","queue":"oa","key":"oa-b"})");
  Call("POST", "/v1/tasks/broadcast", "/v1/tasks/broadcast", R"({"type":"t","queue":"oa","key":"oa-b"})");
  Call("POST", "/v1/tasks/broadcast", "/v1/tasks/broadcast", R"({"type":"t","queue":"oa","require":["zone=z"]})");
  json::value huge = Call("POST", "/v1/tasks", "/v1/tasks", R"({"type":"t","queue":"oa","resources":{"cpu":99000}})");
  Call("GET", "/v1/tasks/{id}", "/v1/tasks/" + std::string(huge.at("id").as_string()));
  Call("DELETE", "/v1/workers/{id}", "/v1/workers/oaw");
  Call("POST", "/v1/workers/{id}/heartbeat", "/v1/workers/oaw/heartbeat");
  Call("GET", "/healthz", "/healthz");
  Call("GET", "/readyz", "/readyz");
  Call("GET", "/metrics", "/metrics");

  // Every operation in the document was exercised.
  for (const auto& [path, ops] : doc_->at("paths").as_object()) {
    for (const auto& [method, op] : ops.as_object()) {
      EXPECT_TRUE(covered_.count(std::string(method) + " " + std::string(path)))
          << method << " " << path << " is documented but not exercised here";
    }
  }
}

}  // namespace
}  // namespace dray::testing
