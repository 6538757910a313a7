// W2 (drain): with tasks already queued, workers lease in batches, run a
// no-op, and acknowledge in batches until the queue is empty; prints tasks/s
// and the conditions. Each worker is a thread with one keep-alive connection
// doing lease → ack → lease ...
//
//   dray_drain_load --port 7070 --queue bench --workers 4 --batch 256
//
// Fill the queue first, e.g. with dray_submit_load --batch 1000.
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 7070;
  std::string queue = "bench";
  int workers = 4;
  int batch = 256;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::atoi(v.c_str());
    else if (k == "--queue") o.queue = v;
    else if (k == "--workers") o.workers = std::max(1, std::atoi(v.c_str()));
    else if (k == "--batch") o.batch = std::max(1, std::atoi(v.c_str()));
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
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
        for (;;) {
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
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("W2 drain: queue=%s workers=%d lease_batch=%d ack_batch=%d handler=no-op cores=%ld\n",
              o.queue.c_str(), o.workers, o.batch, o.batch, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("  completed=%ld refused=%ld errors=%d elapsed=%.2fs rate=%.0f tasks/s\n", done.load(),
              refused.load(), errors.load(), secs, static_cast<double>(done.load()) / secs);
  return errors.load() == 0 && refused.load() == 0 ? 0 : 1;
}
