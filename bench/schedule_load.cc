// Schedules through a running server (issue 6): creates --schedules
// interval schedules (phases spread evenly over one interval) over
// --connections, then samples the server's /metrics once a second for
// --seconds and prints ticks fired and let go per second. When the
// schedules ask for more than the node can fire, ticks fall late and the
// misfire policy ("once") lets the surplus go: fired/s is then the node's
// sustained firing rate, each firing being a task and the schedule's row
// committed together.
//
// The tasks are not consumed: each second adds its firings to the live
// tasks (memory), so keep --seconds short when asking much.
//
//   dray_schedule_load --port 7070 --schedules 100000 --interval-ms 10000 --seconds 15 [--lead-s 30]
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 7070;
  long schedules = 100'000;
  long interval_ms = 1000;
  long seconds = 15;
  int connections = 8;
  long lead_s = 30;  // the first tick this long after the start: creation does not race firing
  std::string queue = "schedbench";
};

// The value of a metric line "name value" in a /metrics text; -1 if absent.
double Metric(const std::string& text, const std::string& name) {
  std::size_t at = 0;
  while ((at = text.find(name + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::atof(text.c_str() + at + name.size() + 1);
    at += name.size();
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--host") o.host = argv[i + 1];
    else if (k == "--port") o.port = std::atoi(argv[i + 1]);
    else if (k == "--schedules") o.schedules = std::atol(argv[i + 1]);
    else if (k == "--interval-ms") o.interval_ms = std::atol(argv[i + 1]);
    else if (k == "--seconds") o.seconds = std::atol(argv[i + 1]);
    else if (k == "--connections") o.connections = std::atoi(argv[i + 1]);
    else if (k == "--queue") o.queue = argv[i + 1];
    else if (k == "--lead-s") o.lead_s = std::atol(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::printf("# dray_schedule_load: %ld schedules every %ld ms (asking %.0f firings/s), misfire "
              "once, overlap allow; created over %d connections; sampled %ld s; server %s:%d; "
              "host %s, %u hardware threads\n",
              o.schedules, o.interval_ms, o.schedules * 1000.0 / o.interval_ms, o.connections,
              o.seconds, o.host.c_str(), o.port, host, std::thread::hardware_concurrency());
  // Phases spread over one interval, from --lead-s ahead: all are created
  // before the first is due.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count() + o.lead_s * 1000;
  const auto first_due = Clock::now() + std::chrono::seconds(o.lead_s);
  std::atomic<long> next{0}, failed{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&] {
      dray::bench::SyncConn conn(o.host, o.port);
      for (long i = next++; i < o.schedules; i = next++) {
        const long long phase = now_ms + (i * o.interval_ms) / o.schedules;
        const std::time_t secs = static_cast<std::time_t>(phase / 1000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char start_at[80];
        std::snprintf(start_at, sizeof start_at, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, phase % 1000);
        const std::string body = "{\"id\":\"b" + std::to_string(i) + "\",\"interval_ms\":" +
                                 std::to_string(o.interval_ms) + ",\"start_at\":\"" + start_at +
                                 "\",\"task\":{\"type\":\"tick\",\"queue\":\"" + o.queue + "\"}}";
        int status = 0;
        conn.Post("/v1/schedules", body, &status);
        if (status != 201) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double create_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("created %ld schedules in %.2f s (%.0f/s), %ld refused\n", o.schedules, create_s,
              o.schedules / create_s, failed.load());
  if (Clock::now() > first_due) {
    std::printf("creation outlasted --lead-s %ld: some ticks were due before it ended\n", o.lead_s);
  }
  std::this_thread::sleep_until(first_due + std::chrono::milliseconds(o.interval_ms));  // steady state
  dray::bench::SyncConn conn(o.host, o.port);
  int status = 0;
  std::string text = conn.Get("/metrics", &status);
  double fired0 = Metric(text, "dray_schedule_ticks_fired_total");
  double skipped0 = Metric(text, "dray_schedule_ticks_skipped_total");
  // Rates over the real time between answers: a busy server answers late.
  auto last = Clock::now();
  const auto begin = last;
  const double fired_begin = fired0, skipped_begin = skipped0;
  std::printf("%6s  %8s  %10s  %10s  %12s\n", "sample", "span_s", "fired/s", "skipped/s",
              "live_tasks");
  for (long s = 1; s <= o.seconds; ++s) {
    std::this_thread::sleep_until(last + std::chrono::seconds(1));  // a sampling period
    text = conn.Get("/metrics", &status);
    const auto at = Clock::now();
    const double span = std::chrono::duration<double>(at - last).count();
    const double fired = Metric(text, "dray_schedule_ticks_fired_total");
    const double skipped = Metric(text, "dray_schedule_ticks_skipped_total");
    std::printf("%6ld  %8.2f  %10.0f  %10.0f  %12.0f\n", s, span, (fired - fired0) / span,
                (skipped - skipped0) / span, Metric(text, "dray_live_tasks"));
    fired0 = fired;
    skipped0 = skipped;
    last = at;
  }
  const double total_s = std::chrono::duration<double>(last - begin).count();
  std::printf("schedules=%ld asked=%.0f/s fired=%.0f/s skipped=%.0f/s over %.1f s\n", o.schedules,
              o.schedules * 1000.0 / o.interval_ms, (fired0 - fired_begin) / total_s,
              (skipped0 - skipped_begin) / total_s, total_s);
  return 0;
}
