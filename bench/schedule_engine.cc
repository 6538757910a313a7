// Schedule firing in the engine alone (issue 6): N interval schedules with
// their phases spread evenly, the clock advanced in steps over simulated
// minutes; prints firings per second of CPU and the cost per firing, so
// that the O(log N) heap shows as N grows. No store, no HTTP: the ceiling
// the server's own figure (dray_schedule_load) can be read against.
//
//   dray_schedule_engine [--schedules 1000,10000,100000,1000000] [--interval-ms 60000]
//                        [--minutes 3] [--step-ms 100]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_flags.h"
#include "engine/engine.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<long> schedules = {1000, 10'000, 100'000, 1'000'000};
  long interval_ms = 60'000;
  long minutes = 3;
  long step_ms = 100;
};


}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--schedules") o.schedules = dray::bench::ParseList(argv[i + 1]);
    else if (k == "--interval-ms") o.interval_ms = std::atol(argv[i + 1]);
    else if (k == "--minutes") o.minutes = std::atol(argv[i + 1]);
    else if (k == "--step-ms") o.step_ms = std::atol(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::printf("# dray_schedule_engine: engine only, one thread; interval %ld ms, %ld simulated "
              "minutes in %ld ms steps; host %s, %u hardware threads\n",
              o.interval_ms, o.minutes, o.step_ms, host, std::thread::hardware_concurrency());
  std::printf("%-10s  %12s  %12s  %14s  %10s\n", "schedules", "create_s", "firings",
              "firings_per_s", "ns_each");
  for (long n : o.schedules) {
    using namespace dray;
    Engine engine(EngineOptions{60'000, 100'000'000, 1});
    const TimeMs t0 = 1'700'000'000'000;
    auto start = Clock::now();
    for (long i = 0; i < n; ++i) {
      ScheduleSpec spec;
      spec.id = "s" + std::to_string(i);
      spec.interval_ms = o.interval_ms;
      spec.start_at = t0 + (i * o.interval_ms) / n;  // phases spread over one interval
      spec.task.type = "tick";
      spec.task.queue = "bench";
      EngineOutput out;
      if (!engine.CreateSchedule(std::move(spec), t0, &out).ok()) return 1;
    }
    const double create_s = std::chrono::duration<double>(Clock::now() - start).count();
    std::uint64_t firings = 0;
    start = Clock::now();
    for (TimeMs now = t0; now <= t0 + o.minutes * 60'000; now += o.step_ms) {
      do {
        EngineOutput out;
        engine.Tick(now, &out);
      } while (engine.NextWakeup() && *engine.NextWakeup() <= now);
      firings = engine.ticks_fired();
    }
    const double run_s = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("%-10ld  %12.2f  %12llu  %14.0f  %10.0f\n", n, create_s,
                static_cast<unsigned long long>(firings), static_cast<double>(firings) / run_s,
                run_s * 1e9 / static_cast<double>(firings));
    std::fflush(stdout);
  }
  return 0;
}
