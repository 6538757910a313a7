// GET /v1/stream through the real server (issue 6): changes in commit
// order, filters, resumption from a last event id (and the reset when that
// cannot be done), the SDK's Watch and futures, and `dray watch`.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dray/client.h"
#include "support/json.h"
#include "support/server_test.h"
#include "support/status_assert.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

class StreamTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    client_ = Connect();
  }
  std::unique_ptr<Client> Connect() {
    ClientOptions o;
    o.server = "http://127.0.0.1:" + std::to_string(server_.port());
    auto c = Client::Create(o);
    EXPECT_OK(c);
    return std::move(*c);
  }
  int Subscribers() {
    std::string m = Http(server_.port(), "GET", "/metrics").body;
    const std::string name = "\ndray_stream_subscribers ";
    auto at = m.find(name);
    return at == std::string::npos ? -1 : std::atoi(m.c_str() + at + name.size());
  }
  // Leases the next task of `queue` (the answer's task, with its lease).
  json::value LeaseOne(const std::string& queue) {
    HttpConn c(server_.port());
    return Lease(c, queue, 1).at(0);
  }
  // Completes (or, with `error`, fails for good) a leased task.
  void Finish(const json::value& t, const std::string& error = "") {
    HttpConn c(server_.port());
    if (error.empty()) {
      Complete(c, t);
    } else {
      Fail(c, t, error, /*retry=*/false);
    }
  }
  // Submits, leases and completes a task on `queue`; returns its id.
  std::string RunOne(const std::string& queue, const std::string& result = "{\"n\":1}") {
    HttpConn c(server_.port());
    const std::string id = Submit(c, queue);
    Complete(c, Lease(c, queue, 1).at(0), result);
    return id;
  }

  std::unique_ptr<Client> client_;
};

// Collects changes on a thread until `want` arrived.
struct Collector {
  std::mutex mu;
  std::vector<TaskChange> got;
  std::thread thread;
  Status status;
  void Start(Client* c, WatchFilter f, std::size_t want, std::string from = "") {
    thread = std::thread([this, c, f, want, from] {
      status = c->Watch(
          f,
          [&](const TaskChange& change) {
            std::lock_guard<std::mutex> lock(mu);
            got.push_back(change);
            return got.size() < want;
          },
          from);
    });
  }
  std::vector<TaskChange> Join() {
    thread.join();
    return got;
  }
};

TEST_F(StreamTest, ChangesArriveInCommitOrderAndResumeWithoutGapOrRepeat) {
  Collector first;
  first.Start(client_.get(), WatchFilter{"s", "", ""}, 2);
  ASSERT_TRUE(WaitFor([&] { return Subscribers() == 1; }));
  const std::string a = RunOne("s");
  RunOne("other");  // another queue: not in this stream
  auto got = first.Join();
  ASSERT_OK(first.status);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].task.id, a);
  EXPECT_EQ(got[0].task.state, TaskState::kReady);
  EXPECT_EQ(got[1].task.state, TaskState::kRunning);
  EXPECT_EQ(got[1].task.worker, "w");
  // Resume after the second event: the third (succeeded, with its result)
  // and then the next task's, nothing repeated.
  const std::string b = RunOne("s", "[1,2]");
  Collector resumed;
  resumed.Start(client_.get(), WatchFilter{"s", "", ""}, 4, got[1].event_id);
  auto rest = resumed.Join();
  ASSERT_OK(resumed.status);
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest[0].task.id, a);
  EXPECT_EQ(rest[0].task.state, TaskState::kSucceeded);
  EXPECT_EQ(rest[0].task.result, R"({"n":1})");
  EXPECT_NE(rest[0].task.finished_at, 0);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(rest[i].task.id, b);
  EXPECT_EQ(rest[3].task.state, TaskState::kSucceeded);
  EXPECT_EQ(rest[3].task.result, "[1,2]");
}

TEST_F(StreamTest, AResumeAcrossARestartSaysReset) {
  Collector first;
  first.Start(client_.get(), WatchFilter{"s", "", ""}, 1);
  ASSERT_TRUE(WaitFor([&] { return Subscribers() == 1; }));
  RunOne("s");
  auto got = first.Join();
  ASSERT_EQ(got.size(), 1u);
  server_.Stop();
  server_.Start();
  Collector after;
  after.Start(client_.get(), WatchFilter{"s", "", ""}, 1, got[0].event_id);
  auto rest = after.Join();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_TRUE(rest[0].reset);
  EXPECT_NE(rest[0].reset_reason.find("restarted"), std::string::npos) << rest[0].reset_reason;
}

TEST_F(StreamTest, AStreamOfOneTaskStartsWithItsStateAndFuturesWait) {
  HttpResult sub = Http(server_.port(), "POST", "/v1/tasks", R"({"type":"t","queue":"f"})");
  const std::string id = Str(sub.json().at("id"));
  auto waited = client_->WaitAsync(id, std::chrono::seconds(30));
  // Already queued: the stream says so first.
  Collector one;
  one.Start(client_.get(), WatchFilter{"", "", id}, 3);
  ASSERT_TRUE(WaitFor([&] { return Subscribers() == 1; }));
  Finish(LeaseOne("f"), "disk full");
  auto got = one.Join();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].task.state, TaskState::kReady);
  EXPECT_EQ(got[1].task.state, TaskState::kRunning);
  EXPECT_EQ(got[2].task.state, TaskState::kFailed);
  EXPECT_EQ(got[2].task.error, "disk full");
  auto done = waited.get();
  ASSERT_OK(done);
  EXPECT_EQ(done->state, TaskState::kFailed);
  // A task that does not exist is refused, not followed.
  Status s = client_->Watch(WatchFilter{"", "", "01a22b7b-819b-70b5-bacb-f1dfb4805c40"},
                            [](const TaskChange&) { return true; });
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
}

TEST_F(StreamTest, AWorkflowFilterFollowsOnlyItsTasks) {
  HttpResult wf = Http(server_.port(), "POST", "/v1/workflows",
                       R"({"tasks":[{"name":"a","type":"t","queue":"wf"},)"
                       R"({"name":"b","type":"t","queue":"wf","depends_on":["a"]}]})");
  ASSERT_EQ(wf.status, 201) << wf.body;
  const std::string wid = Str(wf.json().at("workflow").at("id"));
  Collector c;
  c.Start(client_.get(), WatchFilter{"", wid, ""}, 3);
  ASSERT_TRUE(WaitFor([&] { return Subscribers() == 1; }));
  RunOne("wf-other");
  Finish(LeaseOne("wf"));
  auto got = c.Join();
  ASSERT_EQ(got.size(), 3u);  // a running, a succeeded, b ready
  for (const TaskChange& ch : got) EXPECT_EQ(ch.task.workflow, wid);
  EXPECT_EQ(got[0].task.node, "a");
  EXPECT_EQ(got[2].task.node, "b");
  EXPECT_EQ(got[2].task.state, TaskState::kReady);
}

TEST_F(StreamTest, ALeavingClientIsForgottenAndInterruptEndsAWatch) {
  Collector c;
  c.Start(client_.get(), WatchFilter{"s", "", ""}, 1000);
  ASSERT_TRUE(WaitFor([&] { return Subscribers() == 1; }));
  client_->Interrupt();
  c.Join();
  EXPECT_EQ(c.status.code(), StatusCode::kUnavailable);
  // The server notices the closed connection by the next change at the latest.
  ASSERT_TRUE(WaitFor([&] {
    RunOne("s");
    return Subscribers() == 0;
  }));
}

TEST_F(StreamTest, DrayWatchUntilDoneExitsWithTheOutcome) {
  HttpResult sub = Http(server_.port(), "POST", "/v1/tasks", R"({"type":"t","queue":"cli"})");
  const std::string id = Str(sub.json().at("id"));
  const std::string cmd = BinaryPath() + " watch --server http://127.0.0.1:" +
                          std::to_string(server_.port()) + " --task " + id + " --until-done 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(WaitFor([&] { return Subscribers() == 1; }));
  Finish(LeaseOne("cli"));
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("cli/t  ready"), std::string::npos) << out;
  EXPECT_NE(out.find("cli/t  running"), std::string::npos) << out;
  EXPECT_NE(out.find("cli/t  succeeded"), std::string::npos) << out;
}

}  // namespace
}  // namespace dray::testing
