// Nemesis 5: a worker that stops answering for longer than its lease, either
// paused (SIGSTOP, then SIGCONT) or cut off the network (its own network
// namespace, the link taken down, then up). Each cycle waits until the
// faulty worker (a dray_chaos_client child) holds running tasks, faults it,
// and requires each of those tasks to be handed to another worker while the
// fault lasts. How long that took is printed (lease time + about 100 ms on a
// quiet machine), not asserted: it depends on the machine's load. The faulty
// worker's late completions must be refused (the checker counts any accepted
// one as stale).
//
// Short form (CI): 4 cycles each. Long form:
//   DRAY_CHAOS_WORKER_CYCLES=100 build/tests/dray_chaos_test --gtest_filter='ChaosWorkerFault*'
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <map>

#include "chaos/child.h"
#include "chaos/load.h"
#include "support/server_process.h"
#include "support/status_assert.h"
#include "support/wait.h"

namespace dray::chaos {
namespace {

namespace json = boost::json;
using dray::testing::HttpConn;
using dray::testing::ServerProcess;
using dray::testing::WaitFor;
using Clock = std::chrono::steady_clock;

constexpr int kLeaseMs = 1000;
const char* const kFaultyWorker = "p-w0";  // the child's prefix "p", worker 0

// The running tasks `worker` holds, with their attempt numbers.
std::map<std::string, int> HeldBy(HttpConn& c, const std::string& worker) {
  std::map<std::string, int> held;
  json::value v = c.Call("GET", "/v1/tasks?queue=chaos&state=running&limit=1000").json();
  const json::value* tasks = v.is_object() ? v.get_object().if_contains("tasks") : nullptr;
  if (!tasks || !tasks->is_array()) return held;
  for (const json::value& t : tasks->get_array()) {
    const json::value* w = t.get_object().if_contains("worker");
    if (w && w->is_string() && w->get_string() == worker) {
      held[std::string(t.at("id").as_string())] = static_cast<int>(t.at("attempts").as_int64());
    }
  }
  return held;
}

// Whether the attempt `attempt` of task `id` is over and the task has moved
// on: running again under another worker, waiting for its next attempt is
// not enough (that is expiry, not reassignment), or terminal.
bool MovedOn(HttpConn& c, const std::string& id, int attempt) {
  json::value t = c.Call("GET", "/v1/tasks/" + id).json();
  if (!t.is_object()) return false;
  const std::string state(t.at("state").as_string());
  const int attempts = static_cast<int>(t.at("attempts").as_int64());
  if (state == "succeeded" || state == "failed" || state == "cancelled") return true;
  return attempts > attempt && state == "running";
}

struct FaultRun {
  std::vector<double> reassign_ms;  // one per held task, fault to handed on
  std::size_t late_refused = 0;     // the faulty worker's outcomes refused with 409
  Report report;
};

// Runs `cycles` fault cycles against a server at host:port with one healthy
// in-process worker and submitter and the faulty child worker.
FaultRun RunCycles(ServerProcess& server, const std::string& host,
                   const std::vector<std::string>& child_prefix, int cycles,
                   const std::function<void(ChildClient&)>& fault,
                   const std::function<void(ChildClient&)>& heal) {
  FaultRun run;
  History history;
  LoadOptions opt;
  opt.host = host;
  opt.lease_ms = kLeaseMs;
  opt.submitters = 1;
  opt.workers = 1;
  opt.retry_fail_ratio = 0;
  opt.final_fail_ratio = 0;
  opt.max_outstanding = 2000;  // the submitter outruns two workers; keep the drain short
  MixedLoad load(server.port(), &history, opt);
  EXPECT_EQ(load.ConfigureQueue(20), 200);
  const std::string child_history =
      ::testing::TempDir() + "/chaos-child-" + std::to_string(getpid()) + ".jsonl";
  ChildClient child(DRAY_CHAOS_CLIENT,
                    {"--host", host, "--port", std::to_string(server.port()), "--name", "p",
                     "--workers", "1", "--history", child_history, "--start-ns",
                     std::to_string(history.start_ns()), "--lease-ms", std::to_string(kLeaseMs),
                     "--work-ms", "300"},
                    child_prefix);
  Status started = child.Start();
  EXPECT_OK(started);
  if (!started.ok()) return run;
  load.StartSubmitters();
  load.StartWorkers();
  HttpConn c(server.port(), host);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::map<std::string, int> held;
    EXPECT_TRUE(WaitFor([&] { return !(held = HeldBy(c, kFaultyWorker)).empty(); },
                        std::chrono::seconds(30)))
        << "the faulty worker never held a task (cycle " << cycle << ")";
    fault(child);
    const auto t0 = Clock::now();
    std::map<std::string, int> pending = held;
    EXPECT_TRUE(WaitFor(
        [&] {
          for (auto it = pending.begin(); it != pending.end();) {
            if (MovedOn(c, it->first, it->second)) {
              run.reassign_ms.push_back(
                  std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
              it = pending.erase(it);
            } else {
              ++it;
            }
          }
          return pending.empty();
        },
        std::chrono::seconds(30)))
        << pending.size() << " task(s) of the faulted worker never moved on";
    heal(child);
  }
  load.StopSubmitters();
  EXPECT_TRUE(WaitForDrain(server.port(), opt.queue, std::chrono::seconds(60), host));
  auto child_ops = child.Stop(child_history);
  load.StopWorkers();
  EXPECT_OK(child_ops);
  if (child_ops.ok()) {
    for (const Op& op : *child_ops) {
      if (op.kind != OpKind::kLease && op.kind != OpKind::kSubmit && op.status == 409) ++run.late_refused;
    }
    history.Append(*child_ops);
  }
  std::remove(child_history.c_str());
  CheckOptions check;
  check.faulty_workers = {kFaultyWorker};
  run.report = FetchAndCheck(server.port(), opt.queue, history, check, host);
  return run;
}

void Expect(const FaultRun& run, const char* what) {
  ASSERT_FALSE(run.reassign_ms.empty());
  const double worst = *std::max_element(run.reassign_ms.begin(), run.reassign_ms.end());
  std::printf("%s: %zu held tasks handed on, worst %.0f ms after the fault (lease %d ms); "
              "%zu late outcomes refused with 409; %s\n",
              what, run.reassign_ms.size(), worst, kLeaseMs, run.late_refused,
              run.report.Summary().c_str());
  EXPECT_TRUE(run.report.ok()) << run.report.Summary(20);
}

TEST(ChaosWorkerFaultTest, APausedWorkersTasksAreReassignedAndItsLateCompletionsRefused) {
  const int cycles = EnvInt("DRAY_CHAOS_WORKER_CYCLES", 4);
  ServerProcess server;
  server.Start();
  FaultRun run = RunCycles(
      server, "127.0.0.1", {}, cycles, [](ChildClient& c) { c.Pause(); },
      [](ChildClient& c) { c.Resume(); });
  Expect(run, "SIGSTOP");
  EXPECT_GT(run.late_refused, 0u);  // it woke up holding stale leases and was told so
  EXPECT_EQ(server.Stop(), 0);
}

TEST(ChaosWorkerFaultTest, APartitionedWorkersTasksAreReassignedAndItsLateCompletionsRefused) {
  auto ns = NetNs::Create(static_cast<int>(getpid()));
  if (!ns.ok()) GTEST_SKIP() << "no network namespaces here: " << ns.status().message();
  const int cycles = EnvInt("DRAY_CHAOS_WORKER_CYCLES", 4);
  ServerProcess server;
  server.set_host((*ns)->host_addr());
  server.Start();
  NetNs* n = ns->get();
  FaultRun run = RunCycles(
      server, n->host_addr(), {"ip", "netns", "exec", n->name()}, cycles,
      [n](ChildClient&) { ASSERT_OK(n->Cut()); },
      [n](ChildClient&) { ASSERT_OK(n->Heal()); });
  Expect(run, "partition");
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::chaos
