// Nemesis 6: the system clock is stepped forwards and backwards (an hour, a
// day) under the mixed load, through DRAY_FAULT_INJECTION=clock_offset_file
// (the server adds the file's milliseconds to the system clock, so no root
// and no real clock change are needed). The server's deadlines run on
// SmoothClock: no lease may expire because of a step (the workers are healthy
// and answer in milliseconds, so any expiry is a duplicate and fails the
// test), no retry timer may hang for the size of a backward step (the drain
// must finish), and attempt times must never go backwards.
//
// Long form: DRAY_CHAOS_CLOCK_STEPS=200 build/tests/dray_chaos_test --gtest_filter='ChaosClock*'
#include <gtest/gtest.h>

#include <fstream>

#include "chaos/load.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace dray::chaos {
namespace {

using dray::testing::ServerProcess;
using dray::testing::WaitFor;

void WriteOffset(const std::string& path, long long ms) {
  std::ofstream(path + ".tmp") << ms << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());  // atomic: the server never reads half
}

TEST(ChaosClockTest, ClockStepsNeitherExpireLeasesNorStallTimers) {
  const int steps = EnvInt("DRAY_CHAOS_CLOCK_STEPS", 6);
  const std::string offset_file = ::testing::TempDir() + "/dray-clock-offset-" + std::to_string(getpid());
  WriteOffset(offset_file, 0);
  ServerProcess server;
  server.set_env({"DRAY_FAULT_INJECTION=clock_offset_file=" + offset_file});
  server.Start();
  History history;
  LoadOptions opt;
  opt.lease_ms = 3000;
  opt.retry_fail_ratio = 0.1;  // retries wait on backoff timers (10-50 ms)
  opt.final_fail_ratio = 0;
  MixedLoad load(server.port(), &history, opt);
  ASSERT_EQ(load.ConfigureQueue(50), 200);
  load.StartSubmitters();
  load.StartWorkers();
  const long long kHour = 3'600'000, kDay = 24 * kHour;
  const long long offsets[] = {kHour, 0, -kHour, kDay, -kDay, 0};
  for (int i = 0; i < steps; ++i) {
    const std::size_t target = history.size() + 300;
    ASSERT_TRUE(WaitFor([&] { return history.size() >= target; }, std::chrono::seconds(30)));
    WriteOffset(offset_file, offsets[i % 6]);
  }
  const std::size_t target = history.size() + 300;
  ASSERT_TRUE(WaitFor([&] { return history.size() >= target; }, std::chrono::seconds(30)));
  // A retry timer hung by a clock step shows as a queue that does not drain.
  Report report = load.DrainAndCheck(history, std::chrono::seconds(30));  // times checked too
  std::printf("%d clock steps of up to a day: %s\n", steps, report.Summary().c_str());
  EXPECT_TRUE(report.ok()) << report.Summary(20);
  EXPECT_EQ(report.duplicates, 0u) << "leases expired under healthy workers";
  EXPECT_EQ(server.Stop(), 0);
  std::remove(offset_file.c_str());
}

}  // namespace
}  // namespace dray::chaos
