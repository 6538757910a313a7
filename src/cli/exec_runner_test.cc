#include "cli/exec_runner.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "support/status_assert.h"
#include "support/wait.h"

namespace dray {
namespace {

using std::chrono::milliseconds;
using testing::WaitFor;

ExecResult Exec(const std::string& payload, std::optional<milliseconds> timeout = std::nullopt,
               std::stop_token stop = {}) {
  auto r = RunCommand(payload, timeout, stop);
  EXPECT_OK(r);
  return r.ok() ? *r : ExecResult{};
}

TEST(ExecRunnerTest, CapturesExitCodeAndOutput) {
  ExecResult r = Exec(R"({"argv":["sh","-c","echo out; echo err >&2; exit 3"]})");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.stdout_tail, "out\n");
  EXPECT_EQ(r.stderr_tail, "err\n");
  auto json = boost::json::parse(ExecResultJson(r));
  EXPECT_EQ(json.at("exit_code"), 3);
  EXPECT_EQ(json.at("stdout"), "out\n");
}

TEST(ExecRunnerTest, RunsWithoutAShell) {
  ExecResult r = Exec(R"({"argv":["echo","$HOME","a;b","*"]})");
  EXPECT_EQ(r.stdout_tail, "$HOME a;b *\n");
}

TEST(ExecRunnerTest, PassesEnvCwdAndStdin) {
  ExecResult r = Exec(R"({"argv":["sh","-c","echo $GREETING; pwd; cat"],"env":{"GREETING":"hi"},
                        "cwd":"/tmp","stdin":"from stdin"})");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_tail, "hi\n/tmp\nfrom stdin");
}

TEST(ExecRunnerTest, TaskEnvOverridesTheWorkersAndThePayloadOverridesBoth) {
  ASSERT_EQ(setenv("DRAY_TEST_VAR", "worker", 1), 0);
  auto r = RunCommand(R"({"argv":["sh","-c","echo $DRAY_TEST_VAR $DRAY_OTHER $DRAY_THIRD"],
                         "env":{"DRAY_THIRD":"payload"}})",
                      std::nullopt, std::stop_token(), ExecLimits{},
                      {"DRAY_TEST_VAR=task", "DRAY_OTHER=x", "DRAY_THIRD=task"});
  unsetenv("DRAY_TEST_VAR");
  ASSERT_OK(r);
  EXPECT_EQ(r->stdout_tail, "task x payload\n");
}

TEST(ExecRunnerTest, KeepsOnlyTheTailOfLongOutput) {
  ExecLimits limits;
  limits.tail_bytes = 100;
  auto r = RunCommand(R"({"argv":["sh","-c","seq 1 100000"]})", std::nullopt, {}, limits);
  ASSERT_OK(r);
  EXPECT_EQ(r->stdout_tail.size(), 100u);
  EXPECT_EQ(r->stdout_tail.substr(r->stdout_tail.size() - 7), "100000\n");
}

TEST(ExecRunnerTest, KillsTheChildAtTheTimeout) {
  ExecResult r = Exec(R"({"argv":["sleep","30"]})", milliseconds(200));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGTERM);  // killed, not run out
}

TEST(ExecRunnerTest, KillsAChildThatIgnoresSigterm) {
  ExecLimits limits;
  limits.kill_grace = milliseconds(100);
  auto r = RunCommand(R"({"argv":["sh","-c","trap '' TERM; echo ready; while :; do :; done"]})",
                      milliseconds(200), {}, limits);
  ASSERT_OK(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
}

TEST(ExecRunnerTest, StopsWhenAskedTo) {
  std::stop_source stop;
  std::thread stopper([&] {
    // Stop once the child is surely running: the request itself is the event.
    stop.request_stop();
  });
  ExecResult r = Exec(R"({"argv":["sleep","30"]})", std::nullopt, stop.get_token());
  stopper.join();
  EXPECT_TRUE(r.stopped);
  EXPECT_NE(r.signal, 0);
}

TEST(ExecRunnerTest, RefusesPayloadsThatAreNotCommands) {
  for (const char* bad : {"null", "{}", R"({"argv":[]})", R"({"argv":"ls"})", R"({"argv":[1]})",
                          R"({"argv":["ls"],"env":{"A":1}})"}) {
    auto r = RunCommand(bad, std::nullopt, {});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ExecRunnerTest, ReportsAProgramThatCannotStart) {
  auto r = RunCommand(R"({"argv":["/no/such/program"]})", std::nullopt, {});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("No such file"), std::string::npos);
  auto cwd = RunCommand(R"({"argv":["true"],"cwd":"/no/such/dir"})", std::nullopt, {});
  EXPECT_EQ(cwd.status().code(), StatusCode::kFailedPrecondition);
}

TEST(ExecRunnerTest, ReturnsWhenTheCommandExitsEvenIfABackgroundChildHoldsItsOutput) {
  // Waiting for the output to close would last until the timeout (the
  // background sleep outlives it) and report timed_out.
  ExecResult r = Exec(R"({"argv":["sh","-c","sleep 30 & echo started"]})", milliseconds(20'000));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.stdout_tail, "started\n");
}

TEST(ExecRunnerTest, ACommandThatIgnoresItsStdinStillRuns) {
  std::string big(1 << 20, 'x');  // more than a pipe holds
  std::string payload = boost::json::serialize(boost::json::object{
      {"argv", boost::json::array{"sh", "-c", "exec 0<&-; echo closed"}}, {"stdin", big}});
  ExecResult r = Exec(payload);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_tail, "closed\n");
}

TEST(ExecRunnerTest, FeedsLargeStdinCompletely) {
  std::string big(300'000, 'y');
  std::string payload = boost::json::serialize(
      boost::json::object{{"argv", boost::json::array{"wc", "-c"}}, {"stdin", big}});
  ExecResult r = Exec(payload);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.stdout_tail.find("300000"), std::string::npos) << r.stdout_tail;
}

TEST(ExecRunnerTest, StopsAChildThatIsAlreadyRunning) {
  std::stop_source stop;
  std::thread stopper([&] {
    // Wait for proof that the child runs (its pid file), then stop it.
    const std::string file = "/tmp/dray_exec_runner_test_" + std::to_string(getpid());
    EXPECT_TRUE(WaitFor([&] { return access(file.c_str(), F_OK) == 0; })) << "no " << file;
    stop.request_stop();
    std::remove(file.c_str());
  });
  const std::string file = "/tmp/dray_exec_runner_test_" + std::to_string(getpid());
  std::string payload = boost::json::serialize(boost::json::object{
      {"argv", boost::json::array{"sh", "-c", "echo $$ > " + file + "; exec sleep 30"}}});
  ExecResult r = Exec(payload, std::nullopt, stop.get_token());
  stopper.join();
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.signal, SIGTERM);
}

TEST(ExecRunnerTest, ManyCommandsAtOnceKeepTheirOwnOutput) {
  std::vector<std::thread> threads;
  std::atomic<int> right{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = RunCommand(R"({"argv":["echo",")" + std::to_string(i) + R"("]})", std::nullopt, {});
      if (r.ok() && r->stdout_tail == std::to_string(i) + "\n") ++right;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right, 8);
}

}  // namespace
}  // namespace dray
