#include "cli/exec_runner.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

namespace dray {
namespace {

using std::chrono::milliseconds;

ExecResult Exec(const std::string& payload, std::optional<milliseconds> timeout = std::nullopt,
               std::stop_token stop = {}) {
  auto r = RunCommand(payload, timeout, stop);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
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

TEST(ExecRunnerTest, KeepsOnlyTheTailOfLongOutput) {
  ExecLimits limits;
  limits.tail_bytes = 100;
  auto r = RunCommand(R"({"argv":["sh","-c","seq 1 100000"]})", std::nullopt, {}, limits);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_tail.size(), 100u);
  EXPECT_EQ(r->stdout_tail.substr(r->stdout_tail.size() - 7), "100000\n");
}

TEST(ExecRunnerTest, KillsTheChildAtTheTimeout) {
  auto start = std::chrono::steady_clock::now();
  ExecResult r = Exec(R"({"argv":["sleep","30"]})", milliseconds(200));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ExecRunnerTest, KillsAChildThatIgnoresSigterm) {
  ExecLimits limits;
  limits.kill_grace = milliseconds(100);
  auto r = RunCommand(R"({"argv":["sh","-c","trap '' TERM; echo ready; while :; do :; done"]})",
                      milliseconds(200), {}, limits);
  ASSERT_TRUE(r.ok());
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

}  // namespace
}  // namespace dray
