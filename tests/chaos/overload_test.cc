// Nemesis 7: overload. Many connections submit batches of 1,000 back to back,
// far more than the commit thread can take, while workers drain. The server
// must refuse the excess at the door with 429 and Retry-After (the commit
// backlog bound), answer nothing but 201 or 429, keep its memory bounded,
// keep serving, and lose nothing it acknowledged. The latency of what it
// accepts is printed, not held to a bound: that depends on the machine and
// on what else runs there; `bench/run.sh overload` measures it.
//
// Short form (CI): 8 s. Long form (the issue's 60 s):
//   DRAY_CHAOS_OVERLOAD_SECONDS=60 build/tests/dray_chaos_test --gtest_filter='ChaosOverload*'
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <mutex>
#include <thread>

#include "chaos/load.h"
#include "support/server_process.h"

namespace dray::chaos {
namespace {

using dray::testing::Http;
using dray::testing::HttpConn;
using dray::testing::HttpResult;
using dray::testing::ServerProcess;
using Clock = std::chrono::steady_clock;

// Sanitizer builds run about ten times slower (see the checks below).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

long RssPeakKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(ChaosOverloadTest, OverloadIsRefusedWith429AndStaysBounded) {
  const int seconds = EnvInt("DRAY_CHAOS_OVERLOAD_SECONDS", 8);
  constexpr int kConnections = 96;
  constexpr int kBatch = 1000;
  // A backlog bound of two batches: refusing then needs only that a third
  // batch arrives while two wait for the commit thread, whatever the speed
  // of the machine (the default bound, 50k, is measured by the benchmark).
  ServerProcess server({"--max-commit-backlog", "2000", "--max-live-tasks", "300000"});
  server.Start();
  // Workers drain while the flood runs; their history is checked at the end.
  History history;
  LoadOptions opt;
  opt.submitters = 1;
  opt.workers = 2;
  opt.lease_max = 64;
  MixedLoad load(server.port(), &history, opt);
  ASSERT_EQ(load.ConfigureQueue(), 200);
  load.StartSubmitters();
  load.StartWorkers();

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> accepted{0}, refused{0}, other{0}, without_retry_after{0};
  std::mutex mu;
  std::vector<double> accepted_ms;  // latency of each accepted batch
  std::string body = R"({"tasks":[)";
  for (int i = 0; i < kBatch; ++i) body += std::string(i ? "," : "") + R"({"type":"flood","queue":"flood","payload":{"n":12345678901234567890}})";
  body += "]}";
  std::vector<std::thread> flood;
  for (int c = 0; c < kConnections; ++c) {
    flood.emplace_back([&] {
      HttpConn conn(server.port());
      std::vector<double> mine;
      while (!stop) {
        const auto t0 = Clock::now();
        HttpResult r = conn.Call("POST", "/v1/tasks", body, std::chrono::seconds(30));
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (r.status == 201) {
          accepted += kBatch;
          mine.push_back(ms);
        } else if (r.status == 429) {
          refused += kBatch;
          if (!r.headers.count("retry-after")) ++without_retry_after;
        } else {
          ++other;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      accepted_ms.insert(accepted_ms.end(), mine.begin(), mine.end());
    });
  }
  const auto start = Clock::now();
  long peak_kb = 0;
  while (Clock::now() - start < std::chrono::seconds(seconds)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the flood's duration, sampled
    peak_kb = std::max(peak_kb, RssPeakKb(server.pid()));
    ASSERT_EQ(Http(server.port(), "GET", "/healthz").status, 200) << "the server stopped serving";
  }
  stop = true;
  for (auto& t : flood) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  peak_kb = std::max(peak_kb, RssPeakKb(server.pid()));

  std::sort(accepted_ms.begin(), accepted_ms.end());
  const double p99 = accepted_ms.empty() ? 0 : accepted_ms[accepted_ms.size() * 99 / 100];
  std::printf("overload for %.1f s from %d connections (batches of %d): offered %.0f tasks/s, "
              "accepted %.0f/s, refused with 429 %.0f/s, other answers %llu; accepted p99 %.0f ms; "
              "server peak RSS %ld MB\n",
              elapsed, kConnections, kBatch, (accepted + refused) / elapsed, accepted / elapsed,
              refused / elapsed, static_cast<unsigned long long>(other.load()), p99, peak_kb / 1024);
  // Under a sanitizer the io thread, not the commit thread, is the
  // bottleneck: the backlog may never fill, so only the normal build holds
  // the server to refusing and to a latency bound.
  if (!kSanitized) {
    EXPECT_GT(refused.load(), 0u) << "no backpressure";
  }
  EXPECT_GT(accepted.load(), 0u);
  EXPECT_EQ(other.load(), 0u);
  EXPECT_EQ(without_retry_after.load(), 0u);
  // The live bound caps what is stored, the backlog bound what waits: memory
  // stays far under this whatever the machine's speed.
  EXPECT_LT(peak_kb, 1024L * 1024) << "over 1 GiB";
  std::string metrics = Http(server.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("dray_submits_refused_overload_total"), std::string::npos);

  Report report = load.DrainAndCheck(history, std::chrono::seconds(60));
  EXPECT_TRUE(report.ok()) << report.Summary(20);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::chaos
