// Configurable windows: retention of finished tasks, and the idempotency window.
#include <gtest/gtest.h>

#include "support/server_process.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

namespace json = boost::json;

TEST(RetentionTest, FinishedTasksArePurgedAfterTheRetentionAge) {
  ServerProcess server({"--retention-ms", "300", "--purge-interval-ms", "50"});
  server.Start();
  HttpConn c(server.port());
  std::string done = std::string(
      c.Call("POST", "/v1/tasks", R"({"type":"t","queue":"r"})").json().at("id").as_string());
  std::string live = std::string(
      c.Call("POST", "/v1/tasks", R"({"type":"t","queue":"r","delay_ms":600000})").json().at("id").as_string());
  ASSERT_EQ(c.Call("POST", "/v1/tasks/" + done + "/cancel").status, 200);
  EXPECT_EQ(c.Call("GET", "/v1/tasks/" + done).status, 200);  // kept for now
  EXPECT_EQ(c.Call("GET", "/v1/queues/r").json().at("counts").at("cancelled"), 1);
  ASSERT_TRUE(WaitFor([&] { return c.Call("GET", "/v1/tasks/" + done).status == 404; }));
  EXPECT_EQ(c.Call("GET", "/v1/queues/r").json().at("counts").at("cancelled"), 0);
  EXPECT_EQ(c.Call("GET", "/v1/tasks/" + live).status, 200);  // live tasks are never purged
  EXPECT_EQ(server.Stop(), 0);
}

TEST(RetentionTest, IdempotencyKeysExpireAfterTheirWindow) {
  ServerProcess server({"--idempotency-window-ms", "300"});
  server.Start();
  HttpConn c(server.port());
  const std::string body = R"({"type":"t","key":"once"})";
  HttpResult first = c.Call("POST", "/v1/tasks", body);
  ASSERT_EQ(first.status, 201);
  EXPECT_EQ(c.Call("POST", "/v1/tasks", body).status, 200);
  ASSERT_TRUE(WaitFor([&] {
    HttpResult r = c.Call("POST", "/v1/tasks", body);
    return r.status == 201 && r.json().at("id") != first.json().at("id");
  }));
  EXPECT_EQ(server.Stop(), 0);
}

TEST(RetentionTest, TooManyLiveTasksGet429WithRetryAfter) {
  ServerProcess server({"--max-live-tasks", "5"});
  server.Start();
  HttpConn c(server.port());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.Call("POST", "/v1/tasks", R"({"type":"t"})").status, 201);
  HttpResult r = c.Call("POST", "/v1/tasks", R"({"type":"t"})");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(r.json().at("error").at("code"), "resource_exhausted");
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::testing
