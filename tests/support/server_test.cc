#include "support/server_test.h"

namespace dray::testing {

namespace json = boost::json;

std::string ServerTest::Submit(HttpConn& c, const std::string& queue, const std::string& extra) {
  HttpResult r = c.Call("POST", "/v1/tasks", R"({"type":"t","queue":")" + queue + "\"" + extra + "}");
  EXPECT_EQ(r.status, 201) << r.body;
  return r.status == 201 ? Str(r.json().at("id")) : "";
}

json::array ServerTest::Lease(HttpConn& c, const std::string& queue, int max,
                              const std::string& extra) {
  HttpResult r = c.Call("POST", "/v1/leases", R"({"worker":"w","queues":[")" + queue +
                                                  R"("],"max":)" + std::to_string(max) + extra + "}");
  EXPECT_EQ(r.status, 200) << r.body;
  return r.status == 200 ? r.json().at("tasks").as_array() : json::array();
}

void ServerTest::Complete(HttpConn& c, const json::value& leased, const std::string& result) {
  std::string body = R"({"lease":")" + LeaseToken(leased) + "\"";
  if (!result.empty()) body += R"(,"result":)" + result;
  HttpResult r = c.Call("POST", "/v1/tasks/" + Str(leased.at("id")) + "/complete", body + "}");
  EXPECT_EQ(r.status, 200) << r.body;
}

void ServerTest::Fail(HttpConn& c, const json::value& leased, const std::string& error, bool retry) {
  json::object body{{"lease", LeaseToken(leased)}, {"error", error}, {"retry", retry}};
  HttpResult r = c.Call("POST", "/v1/tasks/" + Str(leased.at("id")) + "/fail", json::serialize(body));
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace dray::testing
