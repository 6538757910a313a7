// W3 (latency): a producer submits at a fixed rate while a worker waits on a
// long-poll lease; each task carries its submit time, and the worker records
// submit-to-handler-start. Prints p50, p99, p99.9 and max with the
// conditions.
//
//   dray_latency_load --port 7070 --rate 1000 --seconds 20
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
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

// Microseconds on the steady clock: producer and worker share this process.
std::int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  using dray::bench::Percentile;
  std::string host = "127.0.0.1", queue = "latency";
  int port = 7070, rate = 1000, seconds = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") host = v;
    else if (k == "--port") port = std::atoi(v.c_str());
    else if (k == "--rate") rate = std::max(1, std::atoi(v.c_str()));
    else if (k == "--seconds") seconds = std::max(1, std::atoi(v.c_str()));
    else if (k == "--queue") queue = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  const long total = static_cast<long>(rate) * seconds;
  std::atomic<long> received{0};
  std::atomic<bool> failed{false};
  std::vector<double> latencies_ms;
  latencies_ms.reserve(static_cast<std::size_t>(total));

  std::thread worker([&] {
    try {
      dray::bench::SyncConn c(host, port);
      const std::string lease = json::serialize(json::object{
          {"worker", "latency"}, {"queues", json::array{json::string(queue)}}, {"max", 100}, {"wait_ms", 5000}});
      while (received < total && !failed) {
        int status = 0;
        json::value v = json::parse(c.Post("/v1/leases", lease, &status));
        if (status != 200) {
          failed = true;
          return;
        }
        const std::int64_t started = NowUs();
        json::array acks;
        for (const json::value& t : v.at("tasks").as_array()) {
          latencies_ms.push_back(static_cast<double>(started - t.at("payload").at("t").to_number<std::int64_t>()) / 1000.0);
          acks.push_back(json::object{{"id", t.at("id")}, {"lease", t.at("lease").at("token")}, {"result", nullptr}});
          ++received;
        }
        if (!acks.empty()) c.Post("/v1/acks", json::serialize(json::object{{"acks", std::move(acks)}}), &status);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "worker: %s\n", e.what());
      failed = true;
    }
  });

  // The producer paces itself against the schedule, not against replies.
  try {
    dray::bench::SyncConn c(host, port);
    const auto start = Clock::now();
    for (long i = 0; i < total && !failed; ++i) {
      std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000 / rate));
      int status = 0;
      c.Post("/v1/tasks",
             R"({"type":"lat","queue":")" + queue + R"(","payload":{"t":)" + std::to_string(NowUs()) +
                 R"(,"pad":"0123456789012345678901234567890123456789012345678901234567890123456789"}})",
             &status);
      if (status != 201) failed = true;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "producer: %s\n", e.what());
    failed = true;
  }
  worker.join();
  std::printf("W3 latency: rate=%d/s seconds=%d tasks=%ld worker=1 long-poll lease max=100 cores=%ld\n",
              rate, seconds, received.load(), sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("  submit-to-handler-start ms: p50=%.2f p99=%.2f p99.9=%.2f max=%.2f\n",
              Percentile(latencies_ms, 0.5), Percentile(latencies_ms, 0.99),
              Percentile(latencies_ms, 0.999), Percentile(latencies_ms, 1.0));
  return failed ? 1 : 0;
}
