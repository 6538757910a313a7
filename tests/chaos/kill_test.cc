// Nemesis 1: kill -9 of the server at random moments under a mixed load of
// submits, leases, heartbeats, completes and fails. After the last cycle the
// server runs undisturbed until every task is terminal, and the checker reads
// the history against the final state.
//
// Short form (CI): 100 cycles (40 on PostgreSQL). Long form:
//   DRAY_CHAOS_CYCLES=2000 build/tests/dray_chaos_test --gtest_filter='ChaosKill*'
// DRAY_CHAOS_SEED picks the schedule (default: the time; printed);
// DRAY_CHAOS_KEEP_HISTORY=1 saves the history even when the run passes.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "chaos/load.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace dray::chaos {
namespace {

using dray::testing::ServerProcess;
using dray::testing::WaitFor;

TEST(ChaosKillTest, KillNineAtRandomMomentsLosesNothing) {
  // On PostgreSQL each restart also opens sessions and checks the schema:
  // fewer cycles keep the short form short (the long form sets its own).
  const int cycles = EnvInt("DRAY_CHAOS_CYCLES", dray::testing::UsesPostgres() ? 40 : 100);
  const std::uint64_t seed = ChaosSeed();
  std::mt19937_64 rng(seed);
  std::printf("seed %llu, %d cycles\n", static_cast<unsigned long long>(seed), cycles);

  ServerProcess server;
  server.Start();
  History history;
  LoadOptions opt;
  opt.seed = seed;
  opt.lease_ms = 1000;
  MixedLoad load(server.port(), &history, opt);
  ASSERT_EQ(load.ConfigureQueue(), 200);
  load.StartSubmitters();
  load.StartWorkers();

  const auto start = std::chrono::steady_clock::now();
  std::uniform_int_distribution<int> ops_before_kill(1, 120);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    // Crash after a random number of operations, so the kill lands anywhere
    // in a submit, a lease, an ack batch or a group commit.
    const std::size_t target = history.size() + static_cast<std::size_t>(ops_before_kill(rng));
    ASSERT_TRUE(WaitFor([&] { return history.size() >= target; }, std::chrono::seconds(30)))
        << "no progress in cycle " << cycle;
    server.Kill();
    server.Start();
  }
  const double fault_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  Report report = load.DrainAndCheck(history, std::chrono::seconds(60));
  std::printf("%d kill -9 cycles in %.1f s: %s\n", cycles, fault_s, report.Summary().c_str());
  EXPECT_TRUE(report.ok()) << report.Summary(20);
  EXPECT_GT(report.acknowledged_submits, static_cast<std::size_t>(cycles));
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::chaos
