// Nemeses 2 and 3: storage faults inside a real server, injected through the
// FaultVfs shim (DRAY_FAULT_INJECTION, see src/server/server_main.cc).
//
// Power loss: the server dies at its N-th fsync, every write not yet synced
// undone, N random per cycle, under the mixed load; it restarts and the load
// goes on. Nothing acknowledged may be missing: a 2xx is sent only after the
// fsync of the transaction that holds it.
//
// fsync failure: from its N-th fsync on every sync fails. The store must
// refuse further writes (503), /readyz must say so, and after a restart
// nothing acknowledged is missing.
//
// Short forms run in CI; long forms:
//   DRAY_CHAOS_POWER_CYCLES=2000 build/tests/dray_chaos_test --gtest_filter='ChaosPowerLoss*'
//   DRAY_CHAOS_SYNC_CYCLES=100 build/tests/dray_chaos_test --gtest_filter='ChaosSyncFailure*'
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <stdexcept>

#include "chaos/load.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace dray::chaos {
namespace {

using dray::testing::Http;
using dray::testing::HttpResult;
using dray::testing::ServerProcess;
using dray::testing::WaitFor;

// Starts the server; false if it died before listening (a crash point inside
// start-up itself, which is a fine place for a power cut).
bool StartMayCrash(ServerProcess& server) {
  try {
    server.Start();
    return true;
  } catch (const std::runtime_error&) {
    EXPECT_TRUE(WaitFor([&] { return server.Exited(); }));
    return false;
  }
}

TEST(ChaosPowerLossTest, PowerCutAtRandomSyncsLosesNothingAcknowledged) {
  const int cycles = EnvInt("DRAY_CHAOS_POWER_CYCLES", 40);
  const std::uint64_t seed = ChaosSeed();
  std::mt19937_64 rng(seed);
  std::printf("seed %llu, %d power cuts\n", static_cast<unsigned long long>(seed), cycles);
  ServerProcess server;
  server.Start();
  History history;
  LoadOptions opt;
  opt.seed = seed;
  MixedLoad load(server.port(), &history, opt);
  ASSERT_EQ(load.ConfigureQueue(), 200);
  server.Stop();
  load.StartSubmitters();
  load.StartWorkers();
  std::uniform_int_distribution<int> sync_no(1, 60);
  int during_startup = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const int n = sync_no(rng);
    server.set_env({"DRAY_FAULT_INJECTION=crash_at_sync=" + std::to_string(n)});
    if (!StartMayCrash(server)) {
      ++during_startup;
      continue;
    }
    ASSERT_TRUE(WaitFor([&] { return server.Exited(); }, std::chrono::seconds(60)))
        << "the server never reached sync " << n << " (cycle " << cycle << ")";
  }
  server.set_env({});
  server.Start();
  Report report = load.DrainAndCheck(history, std::chrono::seconds(60));
  std::printf("%d power cuts (%d during start-up): %s\n", cycles, during_startup,
              report.Summary().c_str());
  EXPECT_TRUE(report.ok()) << report.Summary(20);
  EXPECT_GT(report.acknowledged_submits, 0u);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(ChaosSyncFailureTest, AFailedSyncRefusesWritesReportsItAndLosesNothing) {
  const int cycles = EnvInt("DRAY_CHAOS_SYNC_CYCLES", 5);
  const std::uint64_t seed = ChaosSeed();
  std::mt19937_64 rng(seed);
  std::printf("seed %llu, %d failing-sync cycles\n", static_cast<unsigned long long>(seed), cycles);
  ServerProcess server;
  server.Start();
  History history;
  LoadOptions opt;
  opt.seed = seed;
  MixedLoad load(server.port(), &history, opt);
  ASSERT_EQ(load.ConfigureQueue(), 200);
  server.Stop();
  load.StartSubmitters();
  load.StartWorkers();
  std::uniform_int_distribution<int> sync_no(5, 80);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    server.set_env({"DRAY_FAULT_INJECTION=fail_sync_from=" + std::to_string(sync_no(rng))});
    server.Start();
    HttpResult ready;
    ASSERT_TRUE(WaitFor([&] { return (ready = Http(server.port(), "GET", "/readyz")).status == 503; },
                        std::chrono::seconds(60)))
        << "the store never reported the failed sync";
    EXPECT_NE(ready.body.find("unavailable"), std::string::npos) << ready.body;
    // Every write is refused now, with 503, and nothing is attempted on disk.
    HttpResult submit = Http(server.port(), "POST", "/v1/tasks", R"({"type":"probe","queue":"probe"})");
    EXPECT_EQ(submit.status, 503) << submit.body;
    HttpResult health = Http(server.port(), "GET", "/healthz");
    EXPECT_EQ(health.status, 200);  // the process still serves reads and says why it cannot write
    server.Kill();
  }
  server.set_env({});
  server.Start();
  EXPECT_EQ(Http(server.port(), "GET", "/readyz").status, 200);
  Report report = load.DrainAndCheck(history, std::chrono::seconds(60));
  std::printf("%d failing-sync cycles: %s\n", cycles, report.Summary().c_str());
  EXPECT_TRUE(report.ok()) << report.Summary(20);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::chaos
