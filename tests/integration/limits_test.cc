// Flow control through the real server (issue 5): serial keys, queue
// concurrency and rate limits over HTTP, held across a restart, with the
// reason a task waits visible in the API.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>

#include "support/json.h"
#include "support/server_test.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

namespace json = boost::json;

class LimitsHttpTest : public ServerTest {};

TEST_F(LimitsHttpTest, SerialKeyRunsInOrderAndSaysWhyItWaits) {
  HttpConn c(server_.port());
  std::string a1 = Submit(c, "acct", R"(,"concurrency_key":"acct-1")");
  std::string a2 = Submit(c, "acct", R"(,"concurrency_key":"acct-1")");
  std::string b1 = Submit(c, "acct", R"(,"concurrency_key":"acct-2")");
  auto got = Lease(c, "acct", 10);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(Str(got[0].at("id")), a1);
  EXPECT_EQ(Str(got[0].at("concurrency_key")), "acct-1");
  EXPECT_EQ(Str(got[1].at("id")), b1);
  json::value waiting = c.Call("GET", "/v1/tasks/" + a2).json();
  EXPECT_EQ(waiting.at("state"), "ready");
  EXPECT_EQ(waiting.at("wait_reason"), "concurrency_key");
  EXPECT_NE(Str(waiting.at("wait_detail")).find("key 'acct-1' runs 1 at a time"),
            std::string::npos)
      << waiting;
  // A worker waiting in a long poll gets a2 as soon as a1 is done.
  HttpConn poller(server_.port());
  auto polled =
      std::async(std::launch::async, [&] { return Lease(poller, "acct", 10, R"(,"wait_ms":10000)"); });
  ASSERT_EQ(polled.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  Complete(c, got[0]);
  auto next = polled.get();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(Str(next[0].at("id")), a2);
}

TEST_F(LimitsHttpTest, LimitsAreValidatedAndSurviveARestart) {
  HttpConn c(server_.port());
  HttpResult bad = c.Call("POST", "/v1/tasks", R"({"type":"t","concurrency_limit":2})");
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_NE(bad.body.find("needs a concurrency_key"), std::string::npos) << bad.body;
  bad = c.Call("PATCH", "/v1/queues/acct", R"({"weight":0})");
  EXPECT_EQ(bad.status, 422) << bad.body;
  bad = c.Call("PATCH", "/v1/queues/acct", R"({"rate":-1})");
  EXPECT_EQ(bad.status, 422) << bad.body;

  HttpResult patched = c.Call("PATCH", "/v1/queues/acct", R"({"concurrency":2,"rate":1000,"burst":50})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  std::string k1 = Submit(c, "acct", R"(,"concurrency_key":"k","lease_ms":60000)");
  std::string k2 = Submit(c, "acct", R"(,"concurrency_key":"k")");
  for (int i = 0; i < 5; ++i) Submit(c, "acct", "");
  auto got = Lease(c, "acct", 10);
  ASSERT_EQ(got.size(), 2u);  // the queue's concurrency
  EXPECT_EQ(Str(got[0].at("id")), k1);

  EXPECT_EQ(server_.Stop(), 0);
  server_.Start();
  HttpConn c2(server_.port());
  json::value q = c2.Call("GET", "/v1/queues/acct").json();
  EXPECT_EQ(q.at("settings").at("concurrency"), 2);
  EXPECT_EQ(q.at("settings").at("burst"), 50);
  // Both leases are still held: nothing more may start, and k2 still
  // waits for k1.
  EXPECT_TRUE(Lease(c2, "acct", 10).empty());
  EXPECT_EQ(c2.Call("GET", "/v1/tasks/" + k2).json().at("wait_reason"), "concurrency_key");
  EXPECT_EQ(c2.Call("GET", "/v1/tasks/" + k1).json().at("concurrency_key"), "k");
  Complete(c2, got[1]);
  // One slot: the rate limit's bucket starts empty after a restart, so the
  // start may wait a millisecond for its token.
  json::array more;
  ASSERT_TRUE(WaitFor([&] {
    more = Lease(c2, "acct", 10);
    return !more.empty();
  }));
  ASSERT_EQ(more.size(), 1u);
  EXPECT_NE(Str(more[0].at("id")), k2);
}

}  // namespace
}  // namespace dray::testing
