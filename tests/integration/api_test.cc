// The HTTP API end to end: a real `dray server` process per test suite, a
// fresh data directory, plain HTTP.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <regex>
#include <set>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "support/server_process.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Long polls up to an hour: a test can tell a poll that was woken from
    // one that ran out without timing either.
    server_ = new ServerProcess({"--max-body-bytes", "65536", "--max-payload-bytes", "4096",
                                 "--max-wait-ms", "3600000"});
    server_->Start();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Stop(), 0);
    delete server_;
  }
  // Each test uses its own queue so that tests do not see each other's tasks.
  void SetUp() override {
    queue_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "") {
    return conn_.Call(method, target, body);
  }
  json::value Ok(const std::string& method, const std::string& target, const std::string& body = "",
                 int want = 200) {
    HttpResult r = Call(method, target, body);
    EXPECT_EQ(r.status, want) << method << " " << target << " " << body << " -> " << r.body;
    return r.json();
  }
  std::string Submit(const std::string& extra = "") {
    std::string body = R"({"type":"t","queue":")" + queue_ + "\"" + extra + "}";
    return std::string(Ok("POST", "/v1/tasks", body, 201).at("id").as_string());
  }
  json::array Lease(int max = 1, int wait_ms = 0, const std::string& worker = "w1") {
    json::object req{{"worker", worker}, {"queues", json::array{json::string(queue_)}},
                     {"max", max}, {"wait_ms", wait_ms}};
    return Ok("POST", "/v1/leases", json::serialize(req)).at("tasks").as_array();
  }
  json::object Get(const std::string& id) {
    return Ok("GET", "/v1/tasks/" + id).as_object();
  }
  static std::string Token(const json::value& leased) {
    return std::string(leased.at("lease").at("token").as_string());
  }
  static std::string Id(const json::value& task) { return std::string(task.at("id").as_string()); }
  std::string State(const std::string& id) { return std::string(Get(id).at("state").as_string()); }

  static ServerProcess* server_;
  HttpConn conn_{server_->port()};
  std::string queue_;
};

ServerProcess* ApiTest::server_ = nullptr;

TEST_F(ApiTest, SubmitLeaseCompleteReturnsTheResult) {
  std::string id = Submit(R"(,"payload":{"n":41},"labels":{"team":"core"})");
  json::object t = Get(id);
  EXPECT_EQ(t.at("state"), "ready");
  EXPECT_EQ(t.at("payload").at("n"), 41);
  EXPECT_EQ(t.at("labels").at("team"), "core");
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(Id(leased[0]), id);
  EXPECT_EQ(leased[0].at("state"), "running");
  EXPECT_EQ(leased[0].at("attempts"), 1);
  json::value done = Ok("POST", "/v1/tasks/" + id + "/complete",
                        R"({"lease":")" + Token(leased[0]) + R"(","result":{"n":42}})");
  EXPECT_EQ(done.at("state"), "succeeded");
  json::object after = Get(id);
  EXPECT_EQ(after.at("state"), "succeeded");
  EXPECT_EQ(after.at("result").at("n"), 42);
  ASSERT_EQ(after.at("history").as_array().size(), 1u);
  EXPECT_EQ(after.at("history").at(0).at("outcome"), "succeeded");
  EXPECT_EQ(after.at("history").at(0).at("worker"), "w1");
}

TEST_F(ApiTest, BatchSubmitAndBatchAcks) {
  json::array specs;
  for (int i = 0; i < 50; ++i) {
    specs.push_back(json::object{{"type", "t"}, {"queue", queue_}, {"payload", i}});
  }
  json::value r = Ok("POST", "/v1/tasks", json::serialize(json::object{{"tasks", specs}}), 201);
  ASSERT_EQ(r.at("ids").as_array().size(), 50u);
  auto leased = Lease(50);
  ASSERT_EQ(leased.size(), 50u);
  for (std::size_t i = 0; i < leased.size(); ++i) {  // submit order is kept
    EXPECT_EQ(leased[i].at("id"), r.at("ids").at(i));
  }
  json::array acks;
  for (std::size_t i = 0; i < leased.size(); ++i) {
    json::object a{{"id", leased[i].at("id")}, {"lease", leased[i].at("lease").at("token")}};
    if (i % 2 == 0) {
      a["result"] = static_cast<std::int64_t>(i);
    } else {
      a["error"] = "odd";
      a["retry"] = false;
    }
    acks.push_back(a);
  }
  acks.push_back(json::object{{"id", leased[0].at("id")}, {"lease", "1"}, {"result", 1}});
  json::value out = Ok("POST", "/v1/acks", json::serialize(json::object{{"acks", acks}}));
  auto& results = out.at("results").as_array();
  ASSERT_EQ(results.size(), 51u);
  for (std::size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(results[i].at("ok"), true) << json::serialize(results[i]);
    EXPECT_EQ(results[i].at("state"), i % 2 == 0 ? "succeeded" : "failed");
  }
  EXPECT_EQ(results[50].at("ok"), false);
  EXPECT_EQ(results[50].at("error").at("code"), "aborted");
}

TEST_F(ApiTest, LongPollLeaseWakesWhenATaskArrives) {
  // The poll may wait an hour: it can only end within this test by being
  // woken (the call gives up after two minutes).
  auto waiting = std::async(std::launch::async, [this] {
    HttpConn c(server_->port());
    json::object req{{"worker", "w"}, {"queues", json::array{json::string(queue_)}},
                     {"wait_ms", 3'600'000}};
    return c.Call("POST", "/v1/leases", json::serialize(req), std::chrono::seconds(120));
  });
  // Submit once the lease is waiting (visible in /metrics).
  ASSERT_TRUE(WaitFor([&] {
    return Call("GET", "/metrics").body.find("dray_lease_waiters 1") != std::string::npos;
  }));
  std::string id = Submit();
  HttpResult r = waiting.get();
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json().at("tasks").as_array().size(), 1u);
  EXPECT_EQ(Id(r.json().at("tasks").at(0)), id);
}

// A worker that stops while its long-poll waits must not be handed tasks:
// they would sit leased to nobody until the lease ran out.
TEST_F(ApiTest, AbandonedLongPollLeasesNothing) {
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket sock(ioc);
    sock.connect({boost::asio::ip::make_address("127.0.0.1"),
                  static_cast<unsigned short>(server_->port())});
    std::string body = R"({"worker":"gone","queues":[")" + queue_ + R"("],"wait_ms":30000})";
    std::string req = "POST /v1/leases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    boost::asio::write(sock, boost::asio::buffer(req));
    ASSERT_TRUE(WaitFor([&] {
      return Call("GET", "/metrics").body.find("dray_lease_waiters 1") != std::string::npos;
    }));
  }  // the worker goes away
  ASSERT_TRUE(WaitFor([&] {
    return Call("GET", "/metrics").body.find("dray_lease_waiters 0") != std::string::npos;
  }));
  std::string id = Submit();
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(Id(leased[0]), id);
  EXPECT_EQ(leased[0].at("worker"), "w1");
}

TEST_F(ApiTest, LongPollLeaseReturnsEmptyAfterItsWait) {
  auto start = std::chrono::steady_clock::now();
  auto leased = Lease(1, 300);
  EXPECT_TRUE(leased.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(290));
}

TEST_F(ApiTest, ExpiredLeaseIsReassignedAndTheStaleWorkerIsRefused) {
  std::string id = Submit(R"(,"lease_ms":300,"backoff":{"initial_ms":0,"max_ms":0})");
  auto first = Lease(1, 0, "slow");
  ASSERT_EQ(first.size(), 1u);
  // The first worker goes quiet; another worker gets the task once it expires.
  auto second = Lease(1, 60'000, "fast");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(Id(second[0]), id);
  EXPECT_EQ(second[0].at("attempts"), 2);
  json::object t = Get(id);
  EXPECT_EQ(t.at("history").at(0).at("outcome"), "expired");
  // The stale worker's heartbeat, completion and failure change nothing.
  for (const char* op : {"heartbeat", "complete", "fail"}) {
    HttpResult r = Call("POST", "/v1/tasks/" + id + "/" + op,
                        R"({"lease":")" + Token(first[0]) + R"("})");
    EXPECT_EQ(r.status, 409) << op << " " << r.body;
    EXPECT_EQ(r.json().at("error").at("code"), "aborted");
  }
  json::object after = Get(id);
  EXPECT_EQ(after.at("state"), "running");
  EXPECT_EQ(after.at("worker"), "fast");
  HttpResult inf = Call("POST", "/v1/tasks/" + id + "/complete",
                        R"({"lease":")" + Token(second[0]) + R"(","result":{"x":-1e999}})");
  EXPECT_EQ(inf.status, 422) << inf.body;
  EXPECT_EQ(State(id), "running") << "a refused result changes nothing";
  Ok("POST", "/v1/tasks/" + id + "/complete", R"({"lease":")" + Token(second[0]) + R"("})");
  HttpResult late = Call("POST", "/v1/tasks/" + id + "/complete",
                         R"({"lease":")" + Token(first[0]) + R"("})");
  EXPECT_EQ(late.status, 409);
  EXPECT_EQ(State(id), "succeeded");
}

TEST_F(ApiTest, HeartbeatsKeepALeaseAlive) {
  // A 2 s lease heartbeated every 100 ms until a heartbeat is accepted more
  // than a lease after the grant. The server reaps a lapsed lease before it
  // reads a heartbeat, so that late acceptance proves the earlier heartbeats
  // extended it; the completion with the same token proves it again.
  //
  // The client's clock bounds the server's: a refusal after a gap shorter
  // than the lease (from sending one call to the answer of the next) is a
  // bug. A longer gap (a stalled process on a loaded machine) lets the lease
  // lapse as it should, proves nothing, and the round starts over with a
  // new task; five such stalls in a row fail the test as well.
  using Clock = std::chrono::steady_clock;
  constexpr auto kLease = milliseconds(2000);
  constexpr auto kMaxGap = milliseconds(1500);  // a margin for two clocks
  for (int round = 0; round < 5; ++round) {
    std::string id = Submit(R"(,"lease_ms":2000)");
    auto leased = Lease();
    ASSERT_EQ(leased.size(), 1u);
    const auto granted = Clock::now();  // after the grant, so a lower bound
    const std::string first_expiry(leased[0].at("lease").at("expires_at").as_string());
    const std::string lease_body = R"({"lease":")" + Token(leased[0]) + R"("})";
    auto sent = granted;
    std::string expiry;
    bool stalled = false;
    bool past_first_lease = false;
    while (!past_first_lease) {
      const auto previous = sent;
      sent = Clock::now();
      HttpResult hb = Call("POST", "/v1/tasks/" + id + "/heartbeat", lease_body);
      if (hb.status != 200) {
        ASSERT_GT(Clock::now() - previous, kMaxGap) << "refused within the lease: " << hb.body;
        stalled = true;
        break;
      }
      EXPECT_EQ(hb.json().at("cancel_requested"), false);
      expiry = hb.json().at("expires_at").as_string();
      past_first_lease = sent - granted > kLease + milliseconds(200);
      std::this_thread::sleep_for(milliseconds(100));  // the heartbeat cadence, not a wait
    }
    if (!stalled) {
      const auto previous = sent;
      HttpResult done = Call("POST", "/v1/tasks/" + id + "/complete", lease_body);
      if (done.status != 200) {
        ASSERT_GT(Clock::now() - previous, kMaxGap) << "refused within the lease: " << done.body;
        continue;
      }
      EXPECT_GT(expiry, first_expiry);  // RFC 3339 UTC times order as text
      json::object task = Get(id);
      EXPECT_EQ(task.at("state"), "succeeded");
      EXPECT_EQ(task.at("history").as_array().size(), 1u) << "one attempt, never expired";
      return;
    }
  }
  FAIL() << "five rounds in a row stalled longer than the lease";
}

TEST_F(ApiTest, IdempotentSubmitReturnsTheFirstId) {
  std::string body = R"({"type":"t","queue":")" + queue_ + R"(","key":"order-77"})";
  json::value first = Ok("POST", "/v1/tasks", body, 201);
  json::value second = Ok("POST", "/v1/tasks", body, 200);
  EXPECT_EQ(first.at("id"), second.at("id"));
  EXPECT_EQ(second.at("created"), false);
  json::value batch = Ok("POST", "/v1/tasks", R"({"tasks":[)" + body + "," + body + "]}", 200);
  EXPECT_EQ(batch.at("ids").at(0), first.at("id"));
  EXPECT_EQ(batch.at("ids").at(1), first.at("id"));
  json::value list = Ok("GET", "/v1/tasks?queue=" + queue_);
  EXPECT_EQ(list.at("tasks").as_array().size(), 1u);
}

TEST_F(ApiTest, CancelOfARunningTaskReachesTheWorkerAndEndsCancelled) {
  std::string id = Submit();
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  json::value c = Ok("POST", "/v1/tasks/" + id + "/cancel");
  EXPECT_EQ(c.at("state"), "running");
  EXPECT_EQ(c.at("cancel_requested"), true);
  json::value hb = Ok("POST", "/v1/tasks/" + id + "/heartbeat",
                      R"({"lease":")" + Token(leased[0]) + R"("})");
  EXPECT_EQ(hb.at("cancel_requested"), true);
  json::value f = Ok("POST", "/v1/tasks/" + id + "/fail",
                     R"({"lease":")" + Token(leased[0]) + R"(","error":"stopped"})");
  EXPECT_EQ(f.at("state"), "cancelled");
  EXPECT_EQ(State(id), "cancelled");
  // Cancelling again is harmless; a cancelled task can be retried.
  EXPECT_EQ(Ok("POST", "/v1/tasks/" + id + "/cancel").at("state"), "cancelled");
  EXPECT_EQ(Ok("POST", "/v1/tasks/" + id + "/retry").at("state"), "ready");
  EXPECT_EQ(Lease().size(), 1u);
}

TEST_F(ApiTest, CancelOfAWaitingTaskIsImmediate) {
  std::string id = Submit(R"(,"delay_ms":60000)");
  EXPECT_EQ(State(id), "scheduled");
  EXPECT_EQ(Ok("POST", "/v1/tasks/" + id + "/cancel").at("state"), "cancelled");
  EXPECT_EQ(State(id), "cancelled");
  HttpResult again = Call("POST", "/v1/tasks/" + id + "/retry");
  EXPECT_EQ(again.status, 200);
  HttpResult twice = Call("POST", "/v1/tasks/" + id + "/retry");
  EXPECT_EQ(twice.status, 409) << twice.body;
}

TEST_F(ApiTest, AttemptPastItsTimeoutIsFailedByTheServer) {
  std::string id = Submit(R"(,"timeout_ms":300,"max_attempts":1,"lease_ms":60000)");
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  json::object t = Ok("GET", "/v1/tasks/" + id + "?wait_ms=10000").as_object();
  EXPECT_EQ(t.at("state"), "failed");
  EXPECT_NE(std::string(t.at("error").as_string()).find("timed out"), std::string::npos);
  EXPECT_EQ(t.at("history").at(0).at("outcome"), "timed_out");
  HttpResult hb = Call("POST", "/v1/tasks/" + id + "/heartbeat",
                       R"({"lease":")" + Token(leased[0]) + R"("})");
  EXPECT_EQ(hb.status, 409);
}

TEST_F(ApiTest, FailedAttemptIsRetriedWithBackoff) {
  std::string id =
      Submit(R"(,"max_attempts":3,"backoff":{"initial_ms":300,"max_ms":1000,"jitter":0})");
  auto first = Lease();
  ASSERT_EQ(first.size(), 1u);
  json::value f = Ok("POST", "/v1/tasks/" + id + "/fail",
                     R"({"lease":")" + Token(first[0]) + R"(","error":"flaky"})");
  EXPECT_EQ(f.at("state"), "scheduled");
  EXPECT_EQ(f.at("error"), "flaky");
  EXPECT_TRUE(Lease().empty());  // not before the backoff
  auto second = Lease(1, 10'000);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].at("attempts"), 2);
  json::value g = Ok("POST", "/v1/tasks/" + id + "/fail",
                     R"({"lease":")" + Token(second[0]) +
                         R"(","error":"fatal","retry":false,"result":{"exit_code":3}})");
  EXPECT_EQ(g.at("state"), "failed");
  EXPECT_EQ(Get(id).at("result").at("exit_code"), 3);  // kept beside the error
}

TEST_F(ApiTest, PausedQueueHandsOutNothingUntilResumed) {
  Submit();
  json::value q = Ok("PATCH", "/v1/queues/" + queue_, R"({"paused":true})");
  EXPECT_EQ(q.at("settings").at("paused"), true);
  EXPECT_EQ(q.at("counts").at("ready"), 1);
  EXPECT_TRUE(Lease().empty());
  auto waiting = std::async(std::launch::async, [this] {
    HttpConn c(server_->port());
    json::object req{{"worker", "w"}, {"queues", json::array{json::string(queue_)}},
                     {"wait_ms", 30000}};
    return c.Call("POST", "/v1/leases", json::serialize(req));
  });
  ASSERT_TRUE(WaitFor([&] {
    return Call("GET", "/metrics").body.find("dray_lease_waiters 1") != std::string::npos;
  }));
  Ok("PATCH", "/v1/queues/" + queue_, R"({"paused":false})");
  HttpResult r = waiting.get();
  EXPECT_EQ(r.json().at("tasks").as_array().size(), 1u);
}

TEST_F(ApiTest, WaitOnATaskAnswersWhenItFinishes) {
  std::string id = Submit();
  auto waiting = std::async(std::launch::async, [id] {
    HttpConn c(server_->port());
    return c.Call("GET", "/v1/tasks/" + id + "?wait_ms=30000");
  });
  ASSERT_TRUE(WaitFor([&] {
    return Call("GET", "/metrics").body.find("dray_task_waiters 1") != std::string::npos;
  }));
  auto leased = Lease();
  ASSERT_EQ(leased.size(), 1u);
  Ok("POST", "/v1/tasks/" + id + "/complete", R"({"lease":")" + Token(leased[0]) + R"(","result":7})");
  HttpResult r = waiting.get();
  EXPECT_EQ(r.json().at("state"), "succeeded");
  EXPECT_EQ(r.json().at("result"), 7);
}

TEST_F(ApiTest, ListPagesThroughEveryTaskOnce) {
  std::set<std::string> ids;
  for (int i = 0; i < 25; ++i) ids.insert(Submit());
  for (const char* order : {"asc", "desc"}) {
    std::set<std::string> seen;
    std::string cursor;
    std::string last;
    for (int page = 0; page < 10; ++page) {
      json::value r = Ok("GET", "/v1/tasks?queue=" + queue_ + "&limit=7&order=" + order +
                                    (cursor.empty() ? "" : "&cursor=" + cursor));
      for (const auto& t : r.at("tasks").as_array()) {
        std::string id = Id(t);
        EXPECT_TRUE(seen.insert(id).second) << "repeated " << id;
        if (!last.empty()) {
          EXPECT_EQ(std::string(order) == "asc", last < id);
        }
        last = id;
      }
      if (r.at("next_cursor").is_null()) break;
      cursor = std::string(r.at("next_cursor").as_string());
    }
    EXPECT_EQ(seen, ids) << order;
  }
  json::value ready = Ok("GET", "/v1/tasks?queue=" + queue_ + "&state=ready&limit=1000");
  EXPECT_EQ(ready.at("tasks").as_array().size(), 25u);
}

TEST_F(ApiTest, BadInputGetsTheDocumentedErrorAndChangesNothing) {
  Submit();
  auto count = [&] {
    return Ok("GET", "/v1/tasks?queue=" + queue_ + "&limit=1000").at("tasks").as_array().size();
  };
  const std::size_t before = count();
  struct Case {
    std::string method, target, body;
    int status;
    std::string code, mentions;
  };
  std::string q = R"(,"queue":")" + queue_ + "\"";
  std::vector<Case> cases = {
      {"POST", "/v1/tasks", "{not json", 400, "malformed", "JSON"},
      {"POST", "/v1/tasks", R"({"type":7)" + q + "}", 422, "invalid_argument", "'type'"},
      {"POST", "/v1/tasks", R"({"type":"t","priority":"high")" + q + "}", 422, "invalid_argument", "'priority'"},
      {"POST", "/v1/tasks", R"({"type":"t","colour":"red")" + q + "}", 422, "invalid_argument", "field 'colour' is unknown"},
      {"POST", "/v1/tasks", R"({"tasks":[{"type":"t")" + q + R"(},{"type":"t","max_attempts":-1)" + q + "}]}", 422, "invalid_argument", "tasks[1].max_attempts"},
      {"POST", "/v1/tasks", R"({"type":"t","payload":")" + std::string(5000, 'x') + "\"" + q + "}", 413, "too_large", "payload"},
      {"POST", "/v1/tasks", R"({"type":"t","payload":")" + std::string(70000, 'x') + "\"" + q + "}", 413, "too_large", ""},
      {"POST", "/v1/tasks?namespace=bad%20ns", R"({"type":"t")" + q + "}", 422, "invalid_argument", "namespace"},
      // 1e400 would read as infinity and be written back as `Infinity`, not JSON.
      {"POST", "/v1/tasks", R"({"type":"t","payload":{"n":[1,1e400]})" + q + "}", 422, "invalid_argument", "'payload'"},
      {"GET", "/v1/tasks/0190a0b0-0000-7000-8000-000000000001", "", 404, "not_found", ""},
      {"GET", "/v1/tasks/not-an-id", "", 404, "not_found", ""},
      {"POST", "/v1/tasks/0190a0b0-0000-7000-8000-000000000001/complete", R"({"lease":"1"})", 404, "not_found", ""},
      {"POST", "/v1/tasks/0190a0b0-0000-7000-8000-000000000001/cancel", "", 404, "not_found", ""},
      {"GET", "/v1/tasks?state=sleeping", "", 422, "invalid_argument", "'state'"},
      {"GET", "/v1/tasks?limit=0", "", 422, "invalid_argument", "'limit'"},
      {"POST", "/v1/leases", R"({"queues":["a"]})", 422, "invalid_argument", "'worker'"},
      {"POST", "/v1/leases", R"({"worker":"w","queues":[]})", 422, "invalid_argument", "'queues'"},
      {"POST", "/v1/leases", R"({"worker":"w","queues":["a"],"max":0})", 422, "invalid_argument", "'max'"},
      {"POST", "/v1/leases", R"({"worker":"w","queues":["a"],"speed":1})", 422, "invalid_argument", "field 'speed' is unknown"},
      {"POST", "/v1/acks", R"({"acks":{}})", 422, "invalid_argument", "'acks'"},
      {"POST", "/v1/acks", R"({"acks":[{"id":"x"}]})", 422, "invalid_argument", "acks[0].lease"},
      {"PATCH", "/v1/queues/" + queue_, R"({"paused":"yes"})", 422, "invalid_argument", "'paused'"},
      {"PATCH", "/v1/queues/" + queue_, R"({"lease_ms":5})", 422, "invalid_argument", "'lease_ms'"},
      {"GET", "/v1/queues/never-used", "", 404, "not_found", ""},
      {"GET", "/v1/nothing-here", "", 404, "not_found", ""},
      {"DELETE", "/v1/tasks", "", 405, "", ""},
  };
  for (const Case& c : cases) {
    HttpResult r = Call(c.method, c.target, c.body);
    SCOPED_TRACE(c.method + " " + c.target + " " + c.body.substr(0, 80));
    EXPECT_EQ(r.status, c.status) << r.body;
    if (c.code.empty()) continue;
    json::value j = r.json();
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.at("error").at("code"), c.code.c_str()) << r.body;
    EXPECT_NE(std::string(j.at("error").at("message").as_string()).find(c.mentions),
              std::string::npos)
        << r.body;
  }
  EXPECT_EQ(count(), before);
  json::value settings = Ok("GET", "/v1/queues/" + queue_).at("settings");
  EXPECT_EQ(settings.at("paused"), false);
  EXPECT_EQ(settings.at("lease_ms"), 30000);
}

TEST_F(ApiTest, NamespacesAreIsolated) {
  std::string id = std::string(
      Ok("POST", "/v1/tasks?namespace=acme", R"({"type":"t","queue":")" + queue_ + "\"}", 201)
          .at("id")
          .as_string());
  EXPECT_EQ(Call("GET", "/v1/tasks/" + id).status, 404);
  EXPECT_EQ(Ok("GET", "/v1/tasks/" + id + "?namespace=acme").at("namespace"), "acme");
  EXPECT_TRUE(Lease().empty());  // the default namespace's queue is empty
  json::object req{{"worker", "w"}, {"queues", json::array{json::string(queue_)}}};
  json::value r = Ok("POST", "/v1/leases?namespace=acme", json::serialize(req));
  EXPECT_EQ(r.at("tasks").as_array().size(), 1u);
}

// Numbers come back as people write them (2.0, 0.25, 1e+300), never as
// Boost.JSON's 2E0, in what Dray computes and in what it stores for a user.
TEST_F(ApiTest, DoublesReadAsPeopleWriteThem) {
  Ok("PATCH", "/v1/queues/" + queue_,
     R"({"backoff":{"multiplier":2,"jitter":0.25},"rate":0.5,"burst":1})");
  HttpResult q = Call("GET", "/v1/queues/" + queue_);
  EXPECT_NE(q.body.find(R"("multiplier":2.0,"jitter":0.25)"), std::string::npos) << q.body;
  EXPECT_NE(q.body.find(R"("rate":0.5,)"), std::string::npos) << q.body;
  std::string id = Submit(R"(,"payload":{"a":2.5,"b":2.0,"c":1e300,"d":-0.0,"e":1.0E-7,"f":7})");
  HttpResult t = Call("GET", "/v1/tasks/" + id);
  EXPECT_NE(t.body.find(R"("payload":{"a":2.5,"b":2.0,"c":1e+300,"d":-0.0,"e":1e-07,"f":7})"),
            std::string::npos)
      << t.body;
  for (const HttpResult* r : {&q, &t}) {
    EXPECT_EQ(r->body.find_first_of("E"), std::string::npos) << r->body;
  }
}

// `dray --version`, /healthz and /metrics name the same build; the usage
// line names the program.
TEST_F(ApiTest, EveryWayOfAskingNamesTheSameBuild) {
  auto [rc, out] = RunDray("--version");
  EXPECT_EQ(rc, 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(out, m, std::regex(R"(dray (\d+\.\d+\.\d+) \(([0-9a-f]{12}(-dirty)?|unknown)\)\n)")))
      << out;
  json::value health = Ok("GET", "/healthz");
  EXPECT_EQ(health.at("version").as_string(), m[1].str());
  EXPECT_EQ(health.at("revision").as_string(), m[2].str());
  const std::string metrics = Call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("dray_build_info{version=\"" + m[1].str() + "\",revision=\"" + m[2].str() +
                         "\"} 1\n"),
            std::string::npos)
      << metrics.substr(0, 300);
  auto [hrc, help] = RunDray("--help");
  EXPECT_EQ(hrc, 0);
  EXPECT_NE(help.find("Usage: dray [OPTIONS] SUBCOMMAND"), std::string::npos) << help;
}

TEST_F(ApiTest, HealthAndReadiness) {
  EXPECT_EQ(Ok("GET", "/healthz").at("status"), "ok");
  EXPECT_EQ(Ok("GET", "/readyz").at("status"), "ready");
  HttpResult m = Call("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("dray_commit_batches_total"), std::string::npos);
}

}  // namespace
}  // namespace dray::testing
