#include "dray/client.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "core/json_codec.h"
#include "support/fake_http_server.h"
#include "support/status_assert.h"
#include "support/wait.h"

namespace dray {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using testing::ErrorReply;
using testing::FakeHttpServer;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::Json;
using testing::WaitFor;

std::unique_ptr<Client> ClientFor(const FakeHttpServer& server, std::string ns = "default",
                                  milliseconds timeout = milliseconds(5000)) {
  ClientOptions o;
  o.server = server.url();
  o.ns = std::move(ns);
  o.request_timeout = timeout;
  auto c = Client::Create(o);
  EXPECT_OK(c);
  return std::move(*c);
}

Task SampleTask(const std::string& id, TaskState state = TaskState::kRunning) {
  Task t;
  t.id = id;
  t.type = "resize";
  t.queue = "images";
  t.payload = R"({"w":10})";
  t.state = state;
  t.attempts = 1;
  t.created_at = 1'700'000'000'000;
  t.updated_at = 1'700'000'001'000;
  if (IsTerminal(state)) {
    t.finished_at = 1'700'000'002'000;
    t.result = R"({"ok":true})";
  }
  return t;
}

TEST(ClientTest, SubmitSendsTheSpecInTheClientsNamespace) {
  FakeHttpServer server([](const FakeRequest&) { return Json(201, R"({"id":"t1","created":true})"); });
  auto client = ClientFor(server, "team-a");
  TaskSpec spec;
  spec.type = "resize";
  spec.queue = "images";
  spec.payload = R"({"w":10})";
  spec.priority = -5;
  spec.delay_ms = 250;
  spec.max_attempts = 7;
  spec.timeout_ms = 1000;
  spec.key = "k1";
  spec.labels = {{"team", "a"}};
  auto r = client->Submit(spec);
  ASSERT_OK(r);
  EXPECT_EQ(r->id, "t1");
  EXPECT_TRUE(r->created);

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, "/v1/tasks");
  EXPECT_EQ(reqs[0].query.at("namespace"), "team-a");
  json::value body = reqs[0].json();
  EXPECT_EQ(body.at("type"), "resize");
  EXPECT_EQ(body.at("queue"), "images");
  EXPECT_EQ(body.at("payload"), json::parse(R"({"w":10})"));
  EXPECT_EQ(body.at("priority"), -5);
  EXPECT_EQ(body.at("delay_ms"), 250);
  EXPECT_EQ(body.at("max_attempts"), 7);
  EXPECT_EQ(body.at("timeout_ms"), 1000);
  EXPECT_EQ(body.at("key"), "k1");
  EXPECT_EQ(body.at("labels").at("team"), "a");
  EXPECT_FALSE(body.as_object().contains("run_at"));
}

TEST(ClientTest, SubmitWithASeenKeyReportsNotCreated) {
  FakeHttpServer server([](const FakeRequest&) { return Json(200, R"({"id":"first","created":false})"); });
  auto client = ClientFor(server);
  TaskSpec spec;
  spec.type = "x";
  spec.key = "k";
  auto r = client->Submit(spec);
  ASSERT_OK(r);
  EXPECT_EQ(r->id, "first");
  EXPECT_FALSE(r->created);
}

TEST(ClientTest, SubmitBatchSendsAllSpecsAndKeepsTheirOrder) {
  FakeHttpServer server([](const FakeRequest&) {
    return Json(201, R"({"ids":["a","b","c"],"created":[true,false,true]})");
  });
  auto client = ClientFor(server);
  std::vector<TaskSpec> specs(3);
  for (int i = 0; i < 3; ++i) specs[i].type = "t" + std::to_string(i);
  auto r = client->SubmitBatch(specs);
  ASSERT_OK(r);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[1].id, "b");
  EXPECT_FALSE((*r)[1].created);
  EXPECT_TRUE((*r)[2].created);
  json::value body = server.requests()[0].json();
  ASSERT_EQ(body.at("tasks").as_array().size(), 3u);
  EXPECT_EQ(body.at("tasks").at(2).at("type"), "t2");
}

TEST(ClientTest, ServerErrorsMapToStatusCodesKeepingTheMessage) {
  struct Case {
    int http;
    std::string code;
    StatusCode want;
  };
  const std::vector<Case> cases = {
      {400, "malformed", StatusCode::kMalformed},
      {404, "not_found", StatusCode::kNotFound},
      {409, "aborted", StatusCode::kAborted},
      {409, "failed_precondition", StatusCode::kFailedPrecondition},
      {413, "too_large", StatusCode::kOutOfRange},
      {422, "invalid_argument", StatusCode::kInvalidArgument},
      {429, "resource_exhausted", StatusCode::kResourceExhausted},
      {503, "unavailable", StatusCode::kUnavailable},
      {500, "internal", StatusCode::kInternal},
  };
  std::atomic<std::size_t> next{0};
  FakeHttpServer server([&](const FakeRequest&) {
    const Case& c = cases[next++];
    return ErrorReply(c.http, c.code, "why " + std::to_string(c.http));
  });
  auto client = ClientFor(server);
  for (const Case& c : cases) {
    auto r = client->Get("some-id");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.want) << c.http << " " << c.code;
    EXPECT_NE(r.status().message().find("why " + std::to_string(c.http)), std::string::npos)
        << r.status().message();
  }
}

TEST(ClientTest, TooManyRequestsCarriesRetryAfter) {
  FakeHttpServer server([](const FakeRequest&) {
    FakeResponse r = ErrorReply(429, "resource_exhausted", "too many live tasks");
    r.headers.emplace_back("Retry-After", "3");
    return r;
  });
  auto client = ClientFor(server);
  TaskSpec spec;
  spec.type = "x";
  auto r = client->Submit(spec);
  ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("retry after 3 s"), std::string::npos);
}

TEST(ClientTest, GetDecodesTheTask) {
  Task want = SampleTask("t-42", TaskState::kSucceeded);
  FakeHttpServer server([&](const FakeRequest&) { return Json(200, TaskToJson(want)); });
  auto client = ClientFor(server);
  auto t = client->Get("t-42");
  ASSERT_OK(t);
  EXPECT_EQ(t->id, "t-42");
  EXPECT_EQ(t->state, TaskState::kSucceeded);
  EXPECT_EQ(t->type, "resize");
  EXPECT_EQ(json::parse(t->result), json::parse(want.result));
  EXPECT_EQ(server.requests()[0].path, "/v1/tasks/t-42");
  EXPECT_EQ(server.requests()[0].method, "GET");
}

TEST(ClientTest, AnswersOfTheWrongShapeAreInternalErrorsNotExceptions) {
  std::atomic<int> n{0};
  FakeHttpServer server([&](const FakeRequest&) {
    return ++n == 1 ? Json(200, "not json") : Json(200, R"({"unexpected":1})");
  });
  auto client = ClientFor(server);
  EXPECT_EQ(client->Get("x").status().code(), StatusCode::kInternal);
  TaskSpec spec;
  spec.type = "x";
  EXPECT_EQ(client->Submit(spec).status().code(), StatusCode::kInternal);
  EXPECT_EQ(client->Lease("w", {"q"}, 1, milliseconds(0)).status().code(), StatusCode::kInternal);
  EXPECT_EQ(client->Ack({AckRequest{}}).status().code(), StatusCode::kInternal);
}

TEST(ClientTest, WaitRepeatsLongPollsUntilTheTaskIsTerminal) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest&) {
    TaskState s = ++calls < 3 ? TaskState::kRunning : TaskState::kSucceeded;
    return Json(200, TaskToJson(SampleTask("t1", s)));
  });
  auto client = ClientFor(server);
  auto t = client->Wait("t1", std::chrono::seconds(60));
  ASSERT_OK(t);
  EXPECT_EQ(t->state, TaskState::kSucceeded);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const FakeRequest& r : reqs) {
    EXPECT_EQ(r.path, "/v1/tasks/t1");
    int wait_ms = std::stoi(r.query.at("wait_ms"));
    EXPECT_GT(wait_ms, 0);
    EXPECT_LE(wait_ms, 60'000);
  }
}

TEST(ClientTest, WaitPastItsTimeoutIsDeadlineExceeded) {
  FakeHttpServer server([&](const FakeRequest& r) {
    // Like the server: hold for wait_ms (short here), then answer.
    std::this_thread::sleep_for(milliseconds(std::stoi(r.query.at("wait_ms"))));
    return Json(200, TaskToJson(SampleTask("t1", TaskState::kRunning)));
  });
  auto client = ClientFor(server);
  auto t = client->Wait("t1", milliseconds(60));
  EXPECT_EQ(t.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(ClientTest, ListSendsTheFilterAndReadsThePage) {
  FakeHttpServer server([&](const FakeRequest&) {
    json::array tasks{EncodeTask(SampleTask("a")), EncodeTask(SampleTask("b"))};
    return Json(200, json::serialize(json::object{{"tasks", tasks}, {"next_cursor", "cur2"}}));
  });
  auto client = ClientFor(server);
  ListFilter f;
  f.queue = "images";
  f.state = TaskState::kFailed;
  f.type = "resize";
  f.limit = 2;
  f.cursor = "cur1";
  f.newest_first = false;
  auto page = client->List(f);
  ASSERT_OK(page);
  ASSERT_EQ(page->tasks.size(), 2u);
  EXPECT_EQ(page->tasks[1].id, "b");
  EXPECT_EQ(page->next_cursor, "cur2");
  auto q = server.requests()[0].query;
  EXPECT_EQ(q.at("queue"), "images");
  EXPECT_EQ(q.at("state"), "failed");
  EXPECT_EQ(q.at("type"), "resize");
  EXPECT_EQ(q.at("limit"), "2");
  EXPECT_EQ(q.at("cursor"), "cur1");
  EXPECT_EQ(q.at("order"), "asc");
  EXPECT_EQ(q.at("namespace"), "default");
}

TEST(ClientTest, LastPageHasNoCursor) {
  FakeHttpServer server([&](const FakeRequest&) { return Json(200, R"({"tasks":[],"next_cursor":null})"); });
  auto client = ClientFor(server);
  auto page = client->List({});
  ASSERT_OK(page);
  EXPECT_TRUE(page->tasks.empty());
  EXPECT_TRUE(page->next_cursor.empty());
}

TEST(ClientTest, CancelAndRetryPostToTheTask) {
  FakeHttpServer server([&](const FakeRequest&) {
    return Json(200, TaskToJson(SampleTask("t1", TaskState::kCancelled)));
  });
  auto client = ClientFor(server);
  ASSERT_OK(client->Cancel("t1"));
  ASSERT_OK(client->Retry("t1"));
  auto reqs = server.requests();
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, "/v1/tasks/t1/cancel");
  EXPECT_EQ(reqs[1].path, "/v1/tasks/t1/retry");
}

TEST(ClientTest, LeaseSendsTheRequestAndReadsTokens) {
  FakeHttpServer server([&](const FakeRequest&) {
    json::object t = EncodeTask(SampleTask("t1"));
    t["lease"] = json::object{{"token", "77"}, {"expires_at", "2030-01-01T00:00:00Z"}};
    return Json(200, json::serialize(json::object{{"tasks", json::array{t}}}));
  });
  auto client = ClientFor(server);
  auto leased = client->Lease("w1", {"a", "b"}, 5, milliseconds(100), 9000);
  ASSERT_OK(leased);
  ASSERT_EQ(leased->size(), 1u);
  EXPECT_EQ((*leased)[0].task.id, "t1");
  EXPECT_EQ((*leased)[0].lease.token, "77");
  EXPECT_GT((*leased)[0].lease.expires_at, 0);
  json::value body = server.requests()[0].json();
  EXPECT_EQ(body.at("worker"), "w1");
  EXPECT_EQ(body.at("queues"), json::parse(R"(["a","b"])"));
  EXPECT_EQ(body.at("max"), 5);
  EXPECT_EQ(body.at("wait_ms"), 100);
  EXPECT_EQ(body.at("lease_ms"), 9000);
}

TEST(ClientTest, HeartbeatCompleteAndFailCarryTheLease) {
  FakeHttpServer server([&](const FakeRequest& r) {
    if (r.path.ends_with("/heartbeat")) {
      return Json(200, R"({"expires_at":"2030-01-01T00:00:00Z","cancel_requested":true})");
    }
    return Json(200, TaskToJson(SampleTask("t1", TaskState::kSucceeded)));
  });
  auto client = ClientFor(server);
  auto hb = client->Heartbeat("t1", "77");
  ASSERT_OK(hb);
  EXPECT_TRUE(hb->cancel_requested);
  ASSERT_OK(client->Complete("t1", "77", R"({"n":1})"));
  ASSERT_OK(client->Fail("t1", "77", "boom", false));
  auto reqs = server.requests();
  EXPECT_EQ(reqs[0].path, "/v1/tasks/t1/heartbeat");
  EXPECT_EQ(reqs[0].json().at("lease"), "77");
  EXPECT_EQ(reqs[1].path, "/v1/tasks/t1/complete");
  EXPECT_EQ(reqs[1].json().at("result"), json::parse(R"({"n":1})"));
  EXPECT_EQ(reqs[2].path, "/v1/tasks/t1/fail");
  EXPECT_EQ(reqs[2].json().at("error"), "boom");
  EXPECT_EQ(reqs[2].json().at("retry"), false);
}

TEST(ClientTest, StaleHeartbeatIsAborted) {
  FakeHttpServer server([&](const FakeRequest&) { return ErrorReply(409, "aborted", "stale lease"); });
  auto client = ClientFor(server);
  EXPECT_EQ(client->Heartbeat("t1", "1").status().code(), StatusCode::kAborted);
  EXPECT_EQ(client->Complete("t1", "1", "null").status().code(), StatusCode::kAborted);
}

TEST(ClientTest, AckSendsEveryItemAndReadsOneResultEach) {
  FakeHttpServer server([&](const FakeRequest&) {
    return Json(200, R"({"results":[{"id":"a","ok":true,"state":"succeeded"},
                                     {"id":"b","ok":false,"error":{"code":"aborted","message":"stale"}},
                                     {"id":"c","ok":false,"error":{"code":"not_found","message":"gone"}}]})");
  });
  auto client = ClientFor(server);
  std::vector<AckRequest> acks(3);
  acks[0] = {"a", "1", true, R"({"r":1})", "", true};
  acks[1] = {"b", "2", false, "null", "boom", true};
  acks[2] = {"c", "3", false, "null", "bad", false};
  auto r = client->Ack(acks);
  ASSERT_OK(r);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_OK((*r)[0].status);
  EXPECT_EQ((*r)[0].state, TaskState::kSucceeded);
  EXPECT_EQ((*r)[1].status.code(), StatusCode::kAborted);
  EXPECT_EQ((*r)[1].status.message(), "stale");
  EXPECT_EQ((*r)[2].status.code(), StatusCode::kNotFound);

  json::value body = server.requests()[0].json();
  EXPECT_EQ(server.requests()[0].path, "/v1/acks");
  const json::array& items = body.at("acks").as_array();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].at("id"), "a");
  EXPECT_EQ(items[0].at("lease"), "1");
  EXPECT_EQ(items[0].at("result"), json::parse(R"({"r":1})"));
  EXPECT_FALSE(items[0].as_object().contains("error"));
  EXPECT_EQ(items[1].at("error"), "boom");
  EXPECT_EQ(items[1].at("retry"), true);
  EXPECT_EQ(items[2].at("retry"), false);
  EXPECT_FALSE(items[1].as_object().contains("result"));
}

TEST(ClientTest, QueuesReadSettingsAndCounts) {
  const std::string queue = R"({"namespace":"default","name":"images",
      "settings":{"paused":true,"lease_ms":30000,"max_attempts":5,
                  "backoff":{"initial_ms":100,"max_ms":1000,"multiplier":2.0,"jitter":0.1}},
      "counts":{"scheduled":1,"blocked":0,"ready":2,"running":3,"succeeded":4,"failed":5,"cancelled":6}})";
  FakeHttpServer server([&](const FakeRequest& r) {
    if (r.path == "/v1/queues") return Json(200, R"({"queues":[)" + queue + "]}");
    return Json(200, queue);
  });
  auto client = ClientFor(server);
  auto all = client->Queues();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 1u);
  const QueueInfo& q = (*all)[0];
  EXPECT_EQ(q.name, "images");
  EXPECT_TRUE(q.settings.paused);
  EXPECT_EQ(q.settings.max_attempts, 5);
  EXPECT_EQ(q.counts.at(TaskState::kRunning), 3);
  EXPECT_EQ(q.counts.at(TaskState::kCancelled), 6);
  ASSERT_OK(client->GetQueue("images"));
  auto patched = client->PatchQueue("images", R"({"paused":true})");
  ASSERT_OK(patched);
  auto reqs = server.requests();
  EXPECT_EQ(reqs[1].path, "/v1/queues/images");
  EXPECT_EQ(reqs[2].method, "PATCH");
  EXPECT_EQ(reqs[2].json().at("paused"), true);
}

TEST(ClientTest, HealthAndReadinessUseNoNamespace) {
  FakeHttpServer server([&](const FakeRequest& r) {
    if (r.path == "/readyz") return Json(503, R"({"status":"unavailable","reason":"store failed"})");
    return Json(200, R"({"status":"ok"})");
  });
  auto client = ClientFor(server);
  EXPECT_OK(client->Health());
  Status ready = client->Ready();
  EXPECT_EQ(ready.code(), StatusCode::kUnavailable);
  EXPECT_EQ(ready.message(), "store failed");
  EXPECT_TRUE(server.requests()[0].query.empty());
}

TEST(ClientTest, SequentialCallsReuseOneKeepAliveConnection) {
  FakeHttpServer server([&](const FakeRequest&) { return Json(200, TaskToJson(SampleTask("t"))); });
  auto client = ClientFor(server);
  for (int i = 0; i < 10; ++i) ASSERT_OK(client->Get("t"));
  EXPECT_EQ(server.connections(), 1);
}

TEST(ClientTest, ARequestOnAStaleIdleConnectionIsSentOnceMoreOnAFreshOne) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest&) {
    FakeResponse r = Json(201, R"({"id":"t","created":true})");
    // The first answer claims keep-alive, then the server drops the idle
    // connection, as a server does when its idle timeout passes.
    if (++calls == 1) r.action = FakeResponse::Action::kAnswerThenClose;
    return r;
  });
  auto client = ClientFor(server);
  TaskSpec spec;
  spec.type = "x";
  ASSERT_OK(client->Submit(spec));
  // Wait for the server to close it, so that the pooled connection is surely stale.
  ASSERT_TRUE(WaitFor([&] { return server.connections() == 1 && server.open_connections() == 0; }));
  auto second = client->Submit(spec);
  ASSERT_OK(second);
  EXPECT_EQ(calls, 2);  // each submit reached the handler exactly once
  EXPECT_EQ(server.connections(), 2);
}

TEST(ClientTest, APostCutOnAFreshConnectionIsNotSentAgain) {
  std::atomic<int> calls{0};
  FakeHttpServer server([&](const FakeRequest&) {
    ++calls;
    FakeResponse r;
    r.action = FakeResponse::Action::kCloseWithoutAnswer;
    return r;
  });
  auto client = ClientFor(server);
  TaskSpec spec;
  spec.type = "x";
  auto r = client->Submit(spec);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
}

TEST(ClientTest, ASlowServerGivesDeadlineExceeded) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  FakeHttpServer server([&](const FakeRequest&) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
    return Json(200, "{}");
  });
  auto client = ClientFor(server, "default", milliseconds(100));
  auto r = client->Get("t");  // the server answers only when released, below
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(server.requests().size(), 1u);  // not sent again
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
}

TEST(ClientTest, AnUnreachableServerIsUnavailable) {
  unsigned short port;
  {
    FakeHttpServer gone([](const FakeRequest&) { return Json(200, "{}"); });
    port = gone.port();
  }
  ClientOptions o;
  o.server = "http://127.0.0.1:" + std::to_string(port);
  auto client = Client::Create(o);
  ASSERT_OK(client);
  EXPECT_EQ((*client)->Get("t").status().code(), StatusCode::kUnavailable);
}

TEST(ClientTest, OnlyHttpAddressesAreAccepted) {
  ClientOptions o;
  o.server = "https://example.com";
  EXPECT_EQ(Client::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.server = "http://:80";
  EXPECT_FALSE(Client::Create(o).ok());
}

TEST(ClientTest, InterruptCutsALongPollWithoutResendingIt) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  FakeHttpServer server([&](const FakeRequest&) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
    return Json(200, R"({"tasks":[]})");
  });
  auto client = ClientFor(server);
  std::thread cutter([&] {
    ASSERT_TRUE(WaitFor([&] { return server.requests().size() == 1; }));
    client->Interrupt();
  });
  auto r = client->Lease("w", {"q"}, 1, std::chrono::seconds(30));
  cutter.join();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);  // an answer would be OK and empty
  EXPECT_EQ(server.requests().size(), 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
}

TEST(ClientTest, ManyThreadsShareOneClient) {
  FakeHttpServer server([&](const FakeRequest& r) {
    return Json(200, TaskToJson(SampleTask(r.path.substr(std::string("/v1/tasks/").size()))));
  });
  ClientOptions o;
  o.server = server.url();
  o.max_idle_connections = 4;
  auto client = std::move(*Client::Create(o));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 25; ++j) {
        std::string id = std::to_string(i) + "-" + std::to_string(j);
        auto t = client->Get(id);
        if (t.ok() && t->id == id) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 200);
}

TEST(ClientTest, AfterShutdownEveryCallFailsAtOnce) {
  FakeHttpServer server([&](const FakeRequest&) { return Json(200, R"({"status":"ok"})"); });
  auto client = ClientFor(server);
  ASSERT_OK(client->Health());
  client->Shutdown();
  EXPECT_EQ(client->Health().code(), StatusCode::kUnavailable);
  EXPECT_EQ(server.requests().size(), 1u);
}

}  // namespace
}  // namespace dray
