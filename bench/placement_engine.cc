// Placement in the engine alone (issue 7): W registered workers of random
// sizes lease from a backlog of tasks with random resource requests and
// label requirements, and finish what they run, in rounds; prints tasks
// started per second of CPU and the cost per start, beside the same flow
// with plain tasks (no placement), so that what placement costs a lease
// shows. No store, no HTTP.
//
//   dray_placement_engine [--workers 10,100,1000] [--backlog 100000] [--starts 300000]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_flags.h"
#include "engine/engine.h"

namespace {

using Clock = std::chrono::steady_clock;


struct Result {
  long starts = 0;
  double seconds = 0;
};

// Submits `backlog` tasks, then runs rounds (each worker leases up to 8,
// then finishes half of what it holds, topping the backlog up) until
// `starts` tasks have started.
Result Run(long workers, long backlog, long starts, bool placed) {
  using namespace dray;
  EngineOptions eo;
  eo.idempotency_window_ms = 60'000;
  eo.max_live_tasks = 100'000'000;
  eo.seed = 1;
  eo.worker_grace_ms = 3'600'000;
  Engine engine(eo);
  std::mt19937_64 rng(7);
  const TimeMs t0 = 1'700'000'000'000;
  TimeMs now = t0;
  const char* zones[] = {"a", "b", "c"};
  for (long i = 0; i < workers; ++i) {
    WorkerSpec w;
    w.id = "w" + std::to_string(i);
    w.capacity = {{"cpu", 4000 * static_cast<std::int64_t>(1 + rng() % 8)},
                  {"memory_mb", 8192 * static_cast<std::int64_t>(1 + rng() % 8)}};
    w.labels = {{"zone", zones[rng() % 3]}};
    EngineOutput out;
    engine.RegisterWorker(std::move(w), now, &out);
  }
  auto submit = [&](long n) {
    std::vector<TaskSpec> specs(static_cast<std::size_t>(n));
    for (TaskSpec& s : specs) {
      s.type = "t";
      s.queue = "q";
      if (placed) {
        s.placement.resources = {{"cpu", 500 * static_cast<std::int64_t>(1 + rng() % 8)},
                                 {"memory_mb", 1024 * static_cast<std::int64_t>(1 + rng() % 8)}};
        if (rng() % 10 < 3) {
          s.placement.require = {LabelSelector{"zone", SelectorOp::kEquals, {zones[rng() % 3]}}};
        }
      }
    }
    EngineOutput out;
    (void)engine.Submit(std::move(specs), now, &out);
  };
  submit(backlog);
  std::vector<std::vector<LeasedTask>> held(static_cast<std::size_t>(workers));
  Result r;
  const auto start = Clock::now();
  while (r.starts < starts) {
    now += 10;
    long finished = 0;
    for (long i = 0; i < workers; ++i) {
      EngineOutput out;
      auto got = engine.Lease(LeaseRequest{"default", "w" + std::to_string(i), {"q"}, 8, 600'000},
                              now, &out);
      for (LeasedTask& lt : *got) held[static_cast<std::size_t>(i)].push_back(std::move(lt));
      r.starts += static_cast<long>(got->size());
      auto& mine = held[static_cast<std::size_t>(i)];
      const std::size_t keep = mine.size() / 2;
      while (mine.size() > keep) {
        EngineOutput o2;
        (void)engine.Complete("default", mine.back().task.id, mine.back().lease.token, "1", now, &o2);
        mine.pop_back();
        finished++;
      }
    }
    submit(finished);
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> workers = {10, 100, 1000};
  long backlog = 100'000, starts = 300'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--workers") workers = dray::bench::ParseList(argv[i + 1]);
    else if (k == "--backlog") backlog = std::atol(argv[i + 1]);
    else if (k == "--starts") starts = std::atol(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::printf("# dray_placement_engine: engine only, one thread; backlog %ld tasks kept full, "
              "%ld starts per row; each round every worker leases up to 8 and finishes half "
              "of what it holds; placed tasks ask cpu 500-4000, memory 1-8 GiB, 30%% a zone; "
              "workers 4-32 CPUs, 8-64 GiB, 3 zones; host %s, %u hardware threads\n",
              backlog, starts, host, std::thread::hardware_concurrency());
  std::printf("%-8s  %-7s  %12s  %14s  %10s\n", "workers", "tasks", "starts", "starts_per_s",
              "ns_each");
  for (long w : workers) {
    for (bool placed : {false, true}) {
      Result r = Run(w, backlog, starts, placed);
      std::printf("%-8ld  %-7s  %12ld  %14.0f  %10.0f\n", w, placed ? "placed" : "plain", r.starts,
                  static_cast<double>(r.starts) / r.seconds,
                  r.seconds * 1e9 / static_cast<double>(r.starts));
      std::fflush(stdout);
    }
  }
  return 0;
}
