// W2 (drain): with tasks already queued, workers lease in batches, run a
// no-op, and acknowledge in batches; prints tasks/s and the conditions.
//
//   dray_drain_load --port 7070 --queue bench --workers 4 --batch 256 [--limit N] [--raw]
//
// By default the workers are the C++ SDK's dray::Worker (`--workers` handler
// threads, leases of `--batch`, acks flushed at `--batch`), run until the
// queue is empty or `--limit` tasks are done. With --raw each worker is
// instead a thread with one keep-alive connection doing lease → ack → lease
// with hand-written requests: the protocol's cost without the runtime's.
//
// Fill the queue first, e.g. with dray_submit_load --batch 1000.
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "dray/worker.h"

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 7070;
  std::string queue = "bench";
  int workers = 4;
  int batch = 256;
  long limit = 0;  // stop after this many completions; 0: until the queue is empty (raw only)
  bool raw = false;
};

struct Outcome {
  long done = 0;
  long refused = 0;
  int errors = 0;
  double secs = 0;
};

// SDK mode: one dray::Worker, stopped once `limit` handlers have run.
Outcome RunSdk(const Options& o) {
  dray::ClientOptions co;
  co.server = "http://" + o.host + ":" + std::to_string(o.port);
  co.max_idle_connections = 16;
  dray::WorkerOptions wo;
  wo.name = "bench-sdk";
  wo.queues = {o.queue};
  wo.concurrency = o.workers;
  wo.lease_batch = o.batch;
  wo.prefetch = 2 * o.batch;
  wo.ack_batch = static_cast<std::size_t>(o.batch);
  wo.poll_wait = std::chrono::milliseconds(1000);
  dray::Worker worker(co, wo);
  std::atomic<long> ran{0};
  std::mutex mu;
  std::condition_variable cv;
  worker.HandleAll([&](dray::TaskContext&) {
    if (ran.fetch_add(1, std::memory_order_relaxed) + 1 == o.limit) {
      std::lock_guard lock(mu);
      cv.notify_all();
    }
    return std::string("null");
  });
  auto start = Clock::now();
  dray::Status run_status;
  std::thread runner([&] { run_status = worker.Run(); });
  Outcome out;
  {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::minutes(30), [&] { return ran.load() >= o.limit; })) {
      std::fprintf(stderr, "gave up: %ld of %ld tasks ran in 30 minutes\n", ran.load(), o.limit);
      out.errors++;
    }
  }
  worker.Stop(dray::StopMode::kFinishRunning);  // flushes the remaining acks
  runner.join();
  out.secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (!run_status.ok()) {
    std::fprintf(stderr, "worker: %s\n", run_status.ToString().c_str());
    out.errors++;
  }
  dray::Worker::Stats st = worker.stats();
  out.done = static_cast<long>(st.succeeded - st.acks_refused - st.acks_unsent);
  out.refused = static_cast<long>(st.acks_refused + st.acks_unsent);
  return out;
}

// Raw mode: hand-written lease and ack requests, one connection per thread.
Outcome RunRaw(const Options& o) {
  std::atomic<long> done{0}, refused{0};
  std::atomic<int> errors{0};
  auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < o.workers; ++w) {
    workers.emplace_back([&, w] {
      try {
        dray::bench::SyncConn conn(o.host, o.port);
        const std::string lease_body = json::serialize(json::object{
            {"worker", "bench-" + std::to_string(w)},
            {"queues", json::array{json::string(o.queue)}},
            {"max", o.batch}});
        while (o.limit == 0 || done.load() < o.limit) {
          int status = 0;
          std::string body = conn.Post("/v1/leases", lease_body, &status);
          if (status != 200) {
            errors++;
            return;
          }
          json::value v = json::parse(body);
          const json::array& tasks = v.at("tasks").as_array();
          if (tasks.empty()) return;  // drained
          json::array acks;
          acks.reserve(tasks.size());
          for (const json::value& t : tasks) {
            acks.push_back(json::object{{"id", t.at("id")},
                                        {"lease", t.at("lease").at("token")},
                                        {"result", nullptr}});
          }
          std::string out = conn.Post("/v1/acks",
                                 json::serialize(json::object{{"acks", std::move(acks)}}), &status);
          if (status != 200) {
            errors++;
            return;
          }
          json::value r = json::parse(out);
          for (const json::value& x : r.at("results").as_array()) {
            (x.at("ok").as_bool() ? done : refused)++;
          }
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "worker %d: %s\n", w, e.what());
        errors++;
      }
    });
  }
  for (auto& t : workers) t.join();
  return Outcome{done.load(), refused.load(), errors.load(),
                 std::chrono::duration<double>(Clock::now() - start).count()};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--raw") {
      o.raw = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "flag %s needs a value\n", k.c_str());
      return 2;
    }
    std::string v = argv[++i];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::atoi(v.c_str());
    else if (k == "--queue") o.queue = v;
    else if (k == "--workers") o.workers = std::max(1, std::atoi(v.c_str()));
    else if (k == "--batch") o.batch = std::max(1, std::atoi(v.c_str()));
    else if (k == "--limit") o.limit = std::max(0L, std::atol(v.c_str()));
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (!o.raw && o.limit == 0) {
    std::fprintf(stderr, "the SDK mode needs --limit (how many tasks to drain)\n");
    return 2;
  }
  Outcome r = o.raw ? RunRaw(o) : RunSdk(o);
  std::printf("W2 drain: %s queue=%s %s=%d lease_batch=%d prefetch=%d ack_batch=%d handler=no-op "
              "cores=%ld\n",
              o.raw ? "raw HTTP" : "C++ SDK dray::Worker", o.queue.c_str(),
              o.raw ? "connections" : "handler_threads", o.workers, o.batch, o.raw ? 0 : 2 * o.batch,
              o.batch, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("  completed=%ld refused=%ld errors=%d elapsed=%.2fs rate=%.0f tasks/s\n", r.done,
              r.refused, r.errors, r.secs, static_cast<double>(r.done) / r.secs);
  return r.errors == 0 && r.refused == 0 ? 0 : 1;
}
