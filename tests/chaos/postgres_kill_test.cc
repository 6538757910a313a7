// Nemesis for the PostgreSQL store: PostgreSQL itself killed with -9 (the
// postmaster and every backend at once) under the mixed load, then started
// again on the same data and port. While it is down Dray must refuse
// writes and say so on /readyz; once it is back Dray must come back by
// itself (it probes, then rebuilds its state from the database); and across
// every cycle the checker must find nothing acknowledged lost and no stale
// completion accepted.
//
// The test runs its own PostgreSQL cluster (scripts/test-postgres.sh), not
// the one the other tests share, since it kills it. Without PostgreSQL
// installed it skips.
//
// Short form (CI): 3 cycles. Long form:
//   DRAY_CHAOS_PG_CYCLES=30 build/tests/dray_chaos_test --gtest_filter='ChaosPostgresKill*'
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "chaos/load.h"
#include "support/server_process.h"
#include "support/test_postgres.h"
#include "support/wait.h"

namespace dray::chaos {
namespace {

using dray::testing::Http;
using dray::testing::ServerProcess;
using dray::testing::WaitFor;

// A PostgreSQL cluster of the test's own, in a temp state dir.
class OwnPostgres {
 public:
  OwnPostgres() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dray-pgkill-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    state_ = tmpl;
    started_ = Run("start");
    std::ifstream in(state_ + "/conninfo");
    std::getline(in, conninfo_);
  }
  ~OwnPostgres() {
    Run("stop");
    std::error_code ec;
    std::filesystem::remove_all(state_, ec);
  }
  // "" when PostgreSQL is not installed (the script says so and starts nothing).
  const std::string& conninfo() const { return conninfo_; }
  bool Kill() { return Run("kill"); }
  bool Restart() { return Run("restart"); }

 private:
  bool Run(const std::string& action) {
    const std::string cmd = std::string(DRAY_SOURCE_DIR) + "/scripts/test-postgres.sh " + action +
                            " " + state_ + " > " + state_ + "/" + action + ".log 2>&1";
    return std::system(cmd.c_str()) == 0;
  }

  std::string state_;
  std::string conninfo_;
  bool started_ = false;
};

int Ready(int port) { return Http(port, "GET", "/readyz").status; }

TEST(ChaosPostgresKillTest, PostgresKilledUnderLoadLosesNothingAndServiceComesBack) {
  OwnPostgres pg;
  if (pg.conninfo().empty()) GTEST_SKIP() << "no PostgreSQL server installed";
  ASSERT_EQ(testing_pg::Exec(pg.conninfo(), "CREATE DATABASE dray_chaos"), "");
  // The URL from the cluster's own connection string.
  std::string port = pg.conninfo().substr(pg.conninfo().find("port=") + 5);
  port = port.substr(0, port.find(' '));
  const std::string url = "postgresql://dray@127.0.0.1:" + port + "/dray_chaos";

  const int cycles = EnvInt("DRAY_CHAOS_PG_CYCLES", 3);
  const std::uint64_t seed = ChaosSeed();
  std::mt19937_64 rng(seed);
  std::printf("seed %llu, %d cycles, store %s\n", static_cast<unsigned long long>(seed), cycles,
              url.c_str());

  ServerProcess server({"--store", url});
  server.Start();
  History history;
  LoadOptions opt;
  opt.seed = seed;
  opt.lease_ms = 1000;
  MixedLoad load(server.port(), &history, opt);
  ASSERT_EQ(load.ConfigureQueue(), 200);
  load.StartSubmitters();
  load.StartWorkers();

  std::uniform_int_distribution<int> ops_before_kill(20, 400);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const std::size_t target = history.size() + static_cast<std::size_t>(ops_before_kill(rng));
    ASSERT_TRUE(WaitFor([&] { return history.size() >= target; }, std::chrono::seconds(60)))
        << "no progress in cycle " << cycle;
    ASSERT_TRUE(pg.Kill()) << "cycle " << cycle;
    // Writes fail, the store breaks, and readiness says so.
    ASSERT_TRUE(WaitFor([&] { return Ready(server.port()) == 503; }, std::chrono::seconds(60)))
        << "still ready with PostgreSQL down, cycle " << cycle;
    ASSERT_TRUE(pg.Restart()) << "cycle " << cycle;
    // Back by itself: the server finds PostgreSQL again and rebuilds.
    ASSERT_TRUE(WaitFor([&] { return Ready(server.port()) == 200; }, std::chrono::seconds(90)))
        << "not ready again after PostgreSQL came back, cycle " << cycle;
    EXPECT_FALSE(server.Exited()) << "the server rebuilds in place, it does not exit";
  }

  Report report = load.DrainAndCheck(history, std::chrono::seconds(90));
  std::printf("%d PostgreSQL kill -9 cycles: %s\n", cycles, report.Summary().c_str());
  EXPECT_TRUE(report.ok()) << report.Summary(20);
  EXPECT_GT(report.acknowledged_submits, static_cast<std::size_t>(cycles));
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::chaos
