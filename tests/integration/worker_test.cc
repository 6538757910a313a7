// The C++ SDK (client and worker runtime) and the command worker against a
// real server.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "dray/client.h"
#include "dray/worker.h"
#include "support/server_test.h"
#include "support/status_assert.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

using std::chrono::milliseconds;

class WorkerTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    options_.server = "http://127.0.0.1:" + std::to_string(server_.port());
    client_ = std::move(*Client::Create(options_));
  }
  void TearDown() override { EXPECT_EQ(server_.Stop(), 0); }

  // Counts of a queue's tasks by state, read from the server.
  std::map<TaskState, std::int64_t> Counts(const std::string& queue) {
    auto q = client_->GetQueue(queue);
    return q.ok() ? q->counts : std::map<TaskState, std::int64_t>{};
  }
  bool AllTerminal(const std::string& queue, std::int64_t n) {
    auto c = Counts(queue);
    return c[TaskState::kSucceeded] + c[TaskState::kFailed] + c[TaskState::kCancelled] == n;
  }

  ClientOptions options_;
  std::unique_ptr<Client> client_;
};

TEST_F(WorkerTest, EveryTaskGetsExactlyOneOutcome) {
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 300; ++i) {
    TaskSpec s;
    s.queue = "w";
    s.type = i % 3 == 0 ? "ok" : i % 3 == 1 ? "flaky" : "fatal";
    s.payload = std::to_string(i);
    s.backoff = Backoff{0, 0, 1.0, 0.0};
    specs.push_back(s);
  }
  auto ids = client_->SubmitBatch(specs);
  ASSERT_OK(ids);

  WorkerOptions wo;
  wo.queues = {"w"};
  wo.concurrency = 8;
  wo.poll_wait = milliseconds(200);
  Worker worker(options_, wo);
  worker.Handle("ok", [](TaskContext& ctx) { return "{\"n\":" + ctx.payload() + "}"; });
  worker.Handle("flaky", [](TaskContext& ctx) -> std::string {
    if (ctx.task().attempts == 1) throw std::runtime_error("first attempts fail");
    return "\"second time lucky\"";
  });
  worker.Handle("fatal", [](TaskContext&) -> std::string { throw NonRetryableError("bad input"); });
  std::thread runner([&] { ASSERT_OK(worker.Run()); });
  ASSERT_TRUE(WaitFor([&] { return AllTerminal("w", 300); }, std::chrono::seconds(60)));
  worker.Stop();
  runner.join();

  for (std::size_t i = 0; i < ids->size(); ++i) {
    auto t = client_->Get(ids->at(i).id);
    ASSERT_OK(t);
    if (i % 3 == 0) {
      EXPECT_EQ(t->state, TaskState::kSucceeded);
      EXPECT_EQ(t->result, "{\"n\":" + std::to_string(i) + "}");
      EXPECT_EQ(t->attempts, 1);
    } else if (i % 3 == 1) {
      EXPECT_EQ(t->state, TaskState::kSucceeded);
      EXPECT_EQ(t->attempts, 2);
      EXPECT_EQ(t->history[0].error, "first attempts fail");
    } else {
      EXPECT_EQ(t->state, TaskState::kFailed);
      EXPECT_EQ(t->attempts, 1);
      EXPECT_EQ(t->error, "bad input");
    }
  }
  Worker::Stats st = worker.stats();
  EXPECT_EQ(st.leased, 400u);  // 300 first attempts + 100 retries of the flaky ones
  EXPECT_EQ(st.succeeded, 200u);
  EXPECT_EQ(st.failed, 200u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.acks_refused, 0u);
}

TEST_F(WorkerTest, CancelReachesARunningHandler) {
  TaskSpec s;
  s.queue = "c";
  s.type = "block";
  auto id = client_->Submit(s);
  ASSERT_OK(id);
  WorkerOptions wo;
  wo.queues = {"c"};
  wo.poll_wait = milliseconds(200);
  wo.heartbeat_interval = milliseconds(50);
  Worker worker(options_, wo);
  std::atomic<bool> started{false}, saw_cancel{false};
  worker.Handle("block", [&](TaskContext& ctx) -> std::string {
    started = true;
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, ctx.stop_token(), [] { return false; });  // until stopped
    saw_cancel = ctx.cancel_requested();
    return "null";
  });
  std::thread runner([&] { ASSERT_OK(worker.Run()); });
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  auto c = client_->Cancel(id->id);
  ASSERT_OK(c);
  EXPECT_TRUE(c->cancel_requested);
  auto done = client_->Wait(id->id, std::chrono::seconds(60));
  ASSERT_OK(done);
  EXPECT_EQ(done->state, TaskState::kCancelled);
  EXPECT_TRUE(saw_cancel.load());
  worker.Stop();
  runner.join();
}

TEST_F(WorkerTest, StaleCompletionThroughTheClientIsAborted) {
  TaskSpec s;
  s.queue = "s";
  s.type = "x";
  s.lease_ms = 200;
  s.backoff = Backoff{0, 0, 1.0, 0.0};
  auto id = client_->Submit(s);
  ASSERT_OK(id);
  auto first = client_->Lease("a", {"s"}, 1, milliseconds(0));
  ASSERT_OK(first);
  ASSERT_EQ(first->size(), 1u);
  auto second = client_->Lease("b", {"s"}, 1, milliseconds(5000));
  ASSERT_OK(second);
  ASSERT_EQ(second->size(), 1u);
  auto stale = client_->Complete(id->id, first->at(0).lease.token, "1");
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted);
  auto ok = client_->Complete(id->id, second->at(0).lease.token, "2");
  ASSERT_OK(ok);
  EXPECT_EQ(ok->result, "2");
}

// The `dray worker --exec` binary as a real child process.
class ExecWorkerTest : public WorkerTest {
 protected:
  void StartWorker() {
    worker_pid_ = fork();
    if (worker_pid_ == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      std::string bin = BinaryPath();
      execl(bin.c_str(), bin.c_str(), "worker", "--exec", "--server", options_.server.c_str(),
            "--queues", "cmd", "--concurrency", "4", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  void TearDown() override {
    if (worker_pid_ > 0) {
      kill(worker_pid_, SIGTERM);
      int status = 0;
      waitpid(worker_pid_, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
    WorkerTest::TearDown();
  }
  StatusOr<Task> RunCmd(const std::string& argv_json, const std::string& extra = "") {
    auto r = client_->Call("POST", "/v1/tasks",
                           R"({"type":"exec","queue":"cmd","payload":{"argv":)" + argv_json + "}" +
                               extra + "}");
    if (!r.ok()) return r.status();
    std::string id = std::string(boost::json::parse(*r).at("id").as_string());
    return client_->Wait(id, std::chrono::seconds(30));
  }
  pid_t worker_pid_ = -1;
};

TEST_F(ExecWorkerTest, RunsCommandsAndReportsExitCodes) {
  StartWorker();
  auto ok = RunCmd(R"(["sh","-c","echo hi"])");
  ASSERT_OK(ok);
  EXPECT_EQ(ok->state, TaskState::kSucceeded);
  auto result = boost::json::parse(ok->result);
  EXPECT_EQ(result.at("exit_code"), 0);
  EXPECT_EQ(result.at("stdout"), "hi\n");
  auto bad = RunCmd(R"(["sh","-c","echo broken >&2; exit 4"])", R"(,"max_attempts":1)");
  ASSERT_OK(bad);
  EXPECT_EQ(bad->state, TaskState::kFailed);
  EXPECT_EQ(bad->error, "exit code 4: broken");
  auto bad_result = boost::json::parse(bad->result);
  EXPECT_EQ(bad_result.at("exit_code"), 4);
  EXPECT_EQ(bad_result.at("stderr"), "broken\n");
  auto missing = RunCmd(R"(["/no/such/program"])", R"(,"max_attempts":5)");
  ASSERT_OK(missing);
  EXPECT_EQ(missing->state, TaskState::kFailed);
  EXPECT_EQ(missing->attempts, 1);  // not retried: it can never work
}

TEST_F(ExecWorkerTest, KillsACommandAtItsTimeout) {
  StartWorker();
  // An hour-long sleep: the task can only end within RunCmd's wait by being
  // stopped at its timeout.
  auto t = RunCmd(R"(["sleep","3600"])", R"(,"timeout_ms":300,"max_attempts":1)");
  ASSERT_OK(t);
  EXPECT_EQ(t->state, TaskState::kFailed);
  EXPECT_NE(t->error.find("300 ms"), std::string::npos) << t->error;  // the worker's or the server's word
}

TEST_F(ExecWorkerTest, CancelKillsARunningCommand) {
  StartWorker();
  auto r = client_->Call("POST", "/v1/tasks",
                         R"({"type":"exec","queue":"cmd","lease_ms":600,"payload":{"argv":["sleep","30"]}})");
  ASSERT_OK(r);
  std::string id(boost::json::parse(*r).at("id").as_string());
  ASSERT_TRUE(WaitFor([&] {
    auto t = client_->Get(id);
    return t.ok() && t->state == TaskState::kRunning;
  }));
  ASSERT_OK(client_->Cancel(id));
  auto t = client_->Wait(id, std::chrono::seconds(60));
  ASSERT_OK(t);
  EXPECT_EQ(t->state, TaskState::kCancelled);
}

}  // namespace
}  // namespace dray::testing
