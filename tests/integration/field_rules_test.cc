// Every route reads JSON fields by the same rules (core/json_fields.h,
// docs/http-api.md "How fields are read"): the same malformed field gets the
// same answer from /v1/tasks, /v1/leases, /v1/schedules, /v1/triggers,
// /v1/workers, /v1/events, /v1/queues and a lease's heartbeat.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "support/server_process.h"

namespace dray::testing {
namespace {

namespace json = boost::json;

class FieldRulesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess();
    server_->Start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "") {
    return Http(server_->port(), method, target, body);
  }

  // A running task on queue `queue`, leased by worker "w": its id and token.
  std::pair<std::string, std::string> Leased(const std::string& queue) {
    HttpResult s = Call("POST", "/v1/tasks", R"({"type":"t","queue":")" + queue + "\"}");
    EXPECT_EQ(s.status, 201) << s.body;
    HttpResult l =
        Call("POST", "/v1/leases", R"({"worker":"w","queues":[")" + queue + R"("]})");
    EXPECT_EQ(l.status, 200) << l.body;
    const json::value body = l.json();
    const json::object& t = body.at("tasks").at(0).as_object();
    return {std::string(t.at("id").as_string()),
            std::string(t.at("lease").at("token").as_string())};
  }

  struct Route {
    std::string method, target;
    std::string body;  // "%" stands for the field under test, e.g. "\"max\":%"
  };

  // The routes and, for each, a body with one integer field to vary.
  std::vector<Route> IntegerRoutes(const std::string& heartbeat) {
    return {
        {"POST", "/v1/tasks", R"({"type":"t","queue":"ints","max_attempts":%})"},
        {"POST", "/v1/leases", R"({"worker":"w","queues":["nothing-here"],"max":%})"},
        {"POST", heartbeat, R"({"lease":"0","lease_ms":%})"},
        {"PATCH", "/v1/queues/ints", R"({"weight":%})"},
        {"POST", "/v1/schedules", R"({"interval_ms":60000,"jitter_ms":%,"paused":true,"task":{"type":"t"}})"},
        {"POST", "/v1/triggers", R"({"on":{"event":"e"},"task":{"type":"t","priority":%}})"},
        {"POST", "/v1/workers", R"({"id":"w1","capacity":{"cpu":%}})"},
        {"POST", "/v1/workflows", R"({"tasks":[{"name":"a","type":"t","timeout_ms":%}]})"},
    };
  }

  static std::string With(const Route& r, const std::string& value) {
    std::string body = r.body;
    body.replace(body.find('%'), 1, value);
    return body;
  }

  static std::string Message(const HttpResult& r) {
    json::value j = r.json();
    if (!j.is_object() || !j.as_object().contains("error")) return "";
    return std::string(j.at("error").at("message").as_string());
  }

  static ServerProcess* server_;
};

ServerProcess* FieldRulesTest::server_ = nullptr;

TEST_F(FieldRulesTest, EveryRouteAcceptsAWholeNumberWrittenWithAFraction) {
  auto [id, token] = Leased("whole");
  const std::string heartbeat = "/v1/tasks/" + id + "/heartbeat";
  for (const Route& r : IntegerRoutes(heartbeat)) {
    std::string body = With(r, "2.0");
    if (r.target == heartbeat) body = R"({"lease":")" + token + R"(","lease_ms":2000.0})";
    SCOPED_TRACE(r.method + " " + r.target + " " + body);
    HttpResult res = Call(r.method, r.target, body);
    EXPECT_GE(res.status, 200) << res.body;
    EXPECT_LT(res.status, 300) << res.body;
  }
  HttpResult list = Call("GET", "/v1/tasks?queue=whole&limit=5.0");
  EXPECT_EQ(list.status, 200) << list.body;
}

TEST_F(FieldRulesTest, EveryRouteRefusesAFractionTheSameWay) {
  auto [id, token] = Leased("fraction");
  const std::string heartbeat = "/v1/tasks/" + id + "/heartbeat";
  for (const Route& r : IntegerRoutes(heartbeat)) {
    for (const char* value : {"2.5", "\"2\"", "true"}) {
      std::string body = With(r, value);
      if (r.target == heartbeat) body = R"({"lease":")" + token + R"(","lease_ms":)" + value + "}";
      SCOPED_TRACE(r.method + " " + r.target + " " + body);
      HttpResult res = Call(r.method, r.target, body);
      EXPECT_EQ(res.status, 422) << res.body;
      EXPECT_EQ(res.json().at("error").at("code"), "invalid_argument") << res.body;
      const std::string m = Message(res);
      EXPECT_EQ(m.rfind("field '", 0), 0u) << m;
      EXPECT_NE(m.find("' must be an integer"), std::string::npos) << m;
    }
  }
  for (const std::string& target :
       {std::string("/v1/tasks?limit=2.5"), std::string("/v1/schedules?limit=2.5"),
        std::string("/v1/triggers?limit=2.5")}) {
    HttpResult res = Call("GET", target);
    EXPECT_EQ(res.status, 422) << target << " " << res.body;
    EXPECT_EQ(Message(res), "query parameter 'limit' must be an integer between 1 and 1000")
        << target;
  }
}

TEST_F(FieldRulesTest, EveryRouteRefusesAnOutOfRangeIntegerTheSameWay) {
  for (const Route& r : IntegerRoutes("/v1/tasks/unused/heartbeat")) {
    if (r.target.find("heartbeat") != std::string::npos) continue;
    std::string body = With(r, "1e300");
    SCOPED_TRACE(r.method + " " + r.target + " " + body);
    HttpResult res = Call(r.method, r.target, body);
    EXPECT_EQ(res.status, 422) << res.body;
    EXPECT_NE(Message(res).find("' must be between "), std::string::npos) << res.body;
  }
}

TEST_F(FieldRulesTest, EveryRouteReadsNullAsAbsent) {
  const std::vector<Route> routes = {
      {"POST", "/v1/tasks", R"({"type":"t","queue":"nulls","priority":null,"key":null,"labels":null})"},
      {"POST", "/v1/leases", R"({"worker":"w","queues":["nothing-here"],"max":null,"wait_ms":null})"},
      {"PATCH", "/v1/queues/nulls", R"({"paused":null,"weight":null})"},
      {"POST", "/v1/schedules", R"({"interval_ms":60000,"jitter_ms":null,"name":null,"paused":true,"task":{"type":"t","priority":null}})"},
      {"POST", "/v1/triggers", R"({"name":null,"on":{"event":"e","match":null},"task":{"type":"t"},"paused":null})"},
      {"POST", "/v1/workers", R"({"id":"w2","labels":null,"queues":null})"},
      {"POST", "/v1/events", R"({"name":"e","id":null})"},
      {"POST", "/v1/workflows", R"({"name":null,"tasks":[{"name":"a","type":"t","depends_on":null}]})"},
  };
  for (const Route& r : routes) {
    SCOPED_TRACE(r.method + " " + r.target + " " + r.body);
    HttpResult res = Call(r.method, r.target, r.body);
    EXPECT_GE(res.status, 200) << res.body;
    EXPECT_LT(res.status, 300) << res.body;
  }
  // A null payload is a value, kept as null.
  HttpResult s = Call("POST", "/v1/tasks", R"({"type":"t","queue":"nulls","payload":null})");
  ASSERT_EQ(s.status, 201) << s.body;
  HttpResult t = Call("GET", "/v1/tasks/" + std::string(s.json().at("id").as_string()));
  EXPECT_TRUE(t.json().at("payload").is_null()) << t.body;
}

TEST_F(FieldRulesTest, EveryRouteRefusesAnEmptyIdOrName) {
  auto [id, token] = Leased("empty");
  (void)token;
  const std::vector<std::pair<Route, std::string>> cases = {
      {{"POST", "/v1/tasks", R"({"type":"t","queue":""})"}, "queue"},
      {{"POST", "/v1/tasks", R"({"type":""})"}, "type"},
      {{"POST", "/v1/leases", R"({"worker":"","queues":["q"]})"}, "worker"},
      {{"POST", "/v1/leases", R"({"worker":"w","queues":[""]})"}, "queues[0]"},
      {{"POST", "/v1/tasks/" + id + "/heartbeat", R"({"lease":""})"}, "lease"},
      {{"POST", "/v1/tasks/" + id + "/complete", R"({"lease":""})"}, "lease"},
      {{"POST", "/v1/acks", R"({"acks":[{"id":"","lease":"x"}]})"}, "acks[0].id"},
      {{"POST", "/v1/schedules", R"({"id":"","interval_ms":60000,"task":{"type":"t"}})"}, "id"},
      {{"POST", "/v1/triggers", R"({"id":"","on":{"event":"e"},"task":{"type":"t"}})"}, "id"},
      {{"POST", "/v1/workers", R"({"id":""})"}, "id"},
      {{"POST", "/v1/events", R"({"name":""})"}, "name"},
      {{"POST", "/v1/workflows", R"({"tasks":[{"name":"","type":"t"}]})"}, "tasks[0].name"},
  };
  for (const auto& [r, field] : cases) {
    SCOPED_TRACE(r.method + " " + r.target + " " + r.body);
    HttpResult res = Call(r.method, r.target, r.body);
    EXPECT_EQ(res.status, 422) << res.body;
    EXPECT_EQ(Message(res), "field '" + field + "' must not be empty");
  }
}

TEST_F(FieldRulesTest, EmptyIsKeptWhereItMeansSomething) {
  HttpResult s = Call("POST", "/v1/tasks",
                      R"({"type":"t","queue":"kept","labels":{"tier":""},"require":[{"key":"zone","value":""}]})");
  ASSERT_EQ(s.status, 201) << s.body;
  HttpResult t = Call("GET", "/v1/tasks/" + std::string(s.json().at("id").as_string()));
  EXPECT_EQ(t.json().at("labels").at("tier"), "") << t.body;
  auto [id, token] = Leased("kept-fail");
  HttpResult f = Call("POST", "/v1/tasks/" + id + "/fail",
                      R"({"lease":")" + token + R"(","error":"","retry":false})");
  EXPECT_EQ(f.status, 200) << f.body;
}

TEST_F(FieldRulesTest, EveryRouteNamesAnUnknownFieldTheSameWay) {
  auto [id, token] = Leased("unknown");
  (void)token;
  const std::vector<std::pair<Route, std::string>> cases = {
      {{"POST", "/v1/tasks", R"({"type":"t","colour":1})"}, "colour"},
      {{"POST", "/v1/tasks", R"({"tasks":[{"type":"t","backoff":{"colour":1}}]})"}, "tasks[0].backoff.colour"},
      {{"POST", "/v1/leases", R"({"worker":"w","queues":["q"],"colour":1})"}, "colour"},
      {{"POST", "/v1/tasks/" + id + "/heartbeat", R"({"lease":"x","colour":1})"}, "colour"},
      {{"POST", "/v1/acks", R"({"acks":[{"id":"x","lease":"y","colour":1}]})"}, "acks[0].colour"},
      {{"PATCH", "/v1/queues/unknown", R"({"colour":1})"}, "colour"},
      {{"POST", "/v1/schedules", R"({"interval_ms":60000,"task":{"type":"t"},"colour":1})"}, "colour"},
      {{"POST", "/v1/triggers", R"({"on":{"event":"e","colour":1},"task":{"type":"t"}})"}, "on.colour"},
      {{"POST", "/v1/workers", R"({"id":"w3","colour":1})"}, "colour"},
      {{"POST", "/v1/events", R"({"name":"e","colour":1})"}, "colour"},
      {{"POST", "/v1/workflows", R"({"tasks":[{"name":"a","type":"t"}],"colour":1})"}, "colour"},
  };
  for (const auto& [r, field] : cases) {
    SCOPED_TRACE(r.method + " " + r.target + " " + r.body);
    HttpResult res = Call(r.method, r.target, r.body);
    EXPECT_EQ(res.status, 422) << res.body;
    EXPECT_EQ(Message(res), "field '" + field + "' is unknown");
  }
}

TEST_F(FieldRulesTest, BooleansAreTrueOrFalseOnEveryRoute) {
  const std::vector<std::pair<Route, std::string>> cases = {
      {{"PATCH", "/v1/queues/bools", R"({"paused":1})"}, "paused"},
      {{"POST", "/v1/schedules", R"({"interval_ms":60000,"task":{"type":"t"},"paused":"true"})"}, "paused"},
      {{"POST", "/v1/triggers", R"({"on":{"event":"e"},"task":{"type":"t"},"paused":0})"}, "paused"},
      {{"POST", "/v1/acks", R"({"acks":[{"id":"x","lease":"y","retry":"no"}]})"}, "acks[0].retry"},
  };
  for (const auto& [r, field] : cases) {
    SCOPED_TRACE(r.method + " " + r.target + " " + r.body);
    HttpResult res = Call(r.method, r.target, r.body);
    EXPECT_EQ(res.status, 422) << res.body;
    EXPECT_EQ(Message(res), "field '" + field + "' must be true or false");
  }
}

}  // namespace
}  // namespace dray::testing
