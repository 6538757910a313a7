// Workflows at scale (issue 5): submits one workflow of --tasks tasks in
// one request and runs it to the end with --workers raw lease/ack loops;
// prints the submit time (request to durable acknowledgement), the time
// from the acknowledgement to the workflow's end, and the conditions.
//
//   dray_workflow_load --port 7070 --tasks 10000 --shape fan|chain|layers --workers 4
//
// Shapes: fan = one root, tasks-2 middle tasks depending on it, one sink
// depending on every middle task (the widest fan-in); chain = each task
// depends on the one before (the longest path: one task ready at a time);
// layers = layers of 100, each task depending on 3 of the layer before.
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 7070;
  int tasks = 10'000;
  std::string shape = "fan";
  int workers = 4;
  int batch = 500;
  std::string queue = "wfbench";
};

std::string Name(int i) { return "t" + std::to_string(i); }

std::string Body(const Options& o) {
  json::array tasks;
  tasks.reserve(static_cast<std::size_t>(o.tasks));
  std::mt19937 rng(7);
  for (int i = 0; i < o.tasks; ++i) {
    json::array deps;
    if (o.shape == "chain") {
      if (i > 0) deps.push_back(json::string(Name(i - 1)));
    } else if (o.shape == "layers") {
      const int layer = i / 100;
      if (layer > 0) {
        for (int k = 0; k < 3; ++k) {
          deps.push_back(json::string(Name((layer - 1) * 100 + static_cast<int>(rng() % 100))));
        }
      }
    } else {  // fan
      if (i == o.tasks - 1) {
        for (int j = 1; j < o.tasks - 1; ++j) deps.push_back(json::string(Name(j)));
      } else if (i > 0) {
        deps.push_back(json::string("t0"));
      }
    }
    json::object t{{"name", Name(i)}, {"type", "noop"}, {"queue", o.queue}, {"payload", i}};
    if (!deps.empty()) t["depends_on"] = std::move(deps);
    tasks.push_back(std::move(t));
  }
  return json::serialize(json::object{{"name", "bench-" + o.shape}, {"tasks", std::move(tasks)}});
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::atoi(v.c_str());
    else if (k == "--tasks") o.tasks = std::atoi(v.c_str());
    else if (k == "--shape") o.shape = v;
    else if (k == "--workers") o.workers = std::atoi(v.c_str());
    else if (k == "--batch") o.batch = std::atoi(v.c_str());
    else if (k == "--queue") o.queue = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::printf("conditions: workflow of %d tasks, shape %s, %d raw workers (lease %d, ack in "
              "batches), server %s:%d, %ld cores, payload an integer\n",
              o.tasks, o.shape.c_str(), o.workers, o.batch, o.host.c_str(), o.port,
              sysconf(_SC_NPROCESSORS_ONLN));
  const std::string body = Body(o);
  dray::bench::SyncConn submit(o.host, o.port);
  int status = 0;
  const auto t0 = Clock::now();
  std::string answer = submit.Post("/v1/workflows", body, &status);
  const auto t1 = Clock::now();
  if (status != 201) {
    std::fprintf(stderr, "submit: %d %s\n", status, answer.substr(0, 300).c_str());
    return 1;
  }
  const std::string id(json::parse(answer).at("workflow").at("id").as_string());
  std::atomic<long> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < o.workers; ++w) {
    workers.emplace_back([&, w] {
      dray::bench::SyncConn c(o.host, o.port);
      const std::string lease = R"({"worker":"wb)" + std::to_string(w) + R"(","queues":[")" +
                                o.queue + R"("],"max":)" + std::to_string(o.batch) +
                                R"(,"wait_ms":200})";
      while (!stop.load()) {
        int st = 0;
        json::value leased = json::parse(c.Post("/v1/leases", lease, &st));
        const json::array& ts = leased.at("tasks").as_array();
        if (ts.empty()) continue;
        json::array acks;
        for (const json::value& t : ts) {
          acks.push_back(json::object{{"id", t.at("id")},
                                      {"lease", t.at("lease").at("token")},
                                      {"result", t.at("payload")}});
        }
        c.Post("/v1/acks", json::serialize(json::object{{"acks", std::move(acks)}}), &st);
        done += static_cast<long>(ts.size());
      }
    });
  }
  // The end: a long poll on the workflow.
  std::string state = "running";
  while (state == "running") {
    namespace http = boost::beast::http;
    boost::asio::io_context ioc;
    boost::beast::tcp_stream s(ioc);
    s.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(o.host),
                                             static_cast<unsigned short>(o.port)));
    http::request<http::empty_body> req{http::verb::get,
                                        "/v1/workflows/" + id + "?tasks=0&wait_ms=30000", 11};
    req.set(http::field::host, o.host);
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    state = std::string(json::parse(res.body()).at("state").as_string());
  }
  const auto t2 = Clock::now();
  stop = true;
  for (auto& t : workers) t.join();
  const double submit_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double run_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("workflow %s: %s\n", id.c_str(), state.c_str());
  std::printf("  submit  %d tasks, %zu bytes: %.1f ms (request to durable acknowledgement)\n",
              o.tasks, body.size(), submit_ms);
  std::printf("  run     %.3f s from acknowledgement to the workflow's end: %.0f tasks/s\n", run_s,
              static_cast<double>(o.tasks) / run_s);
  return state == "succeeded" ? 0 : 1;
}
