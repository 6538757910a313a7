// W1 (enqueue): drives POST /v1/tasks against a running Dray server from one
// process over many keep-alive connections, and prints tasks/s with the
// conditions of the run.
//
//   dray_submit_load --port 7070 --tasks 100000 --connections 64 --batch 1
//   dray_submit_load --port 7070 --tasks 100000 --connections 4 --batch 1000
//
// Overload (--seconds S): submit for S seconds with no task count, far past
// what the server commits, and report what it accepted, what it refused with
// 429 (its commit backlog bound) and the latency of the accepted requests:
//
//   dray_submit_load --port 7070 --seconds 8 --connections 96 --batch 1000
//
// Each connection keeps exactly one request in flight (HTTP/1.1 without
// pipelining), so the server's group commit, not the client, sets the pace.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 7070;
  long tasks = 100'000;
  int connections = 64;
  int batch = 1;
  int threads = 1;
  std::string queue = "bench";
  double seconds = 0;  // > 0: overload mode, for this long with no task count
};

struct Shared {
  std::atomic<long> next{0};     // tasks handed out to connections
  std::atomic<long> done{0};     // tasks acknowledged with 2xx
  std::atomic<long> errors{0};   // non-2xx answers (but 429 in overload mode)
  std::atomic<long> refused{0};  // tasks refused with 429 (overload mode)
  Clock::time_point deadline;    // overload mode: no request starts after it
  std::vector<double> latencies_ms;  // per request, merged at the end
};

// ~100 bytes of payload, as in the benchmark spec.
const char kPayload[] =
    R"({"user":12345,"action":"resize","bucket":"photos-eu","object":"2026/11/24/img_0001.jpg","w":640})";

// The tasks are alike: a type, a queue and the payload (no labels or keys),
// the shape the benchmark spec gives.
std::string Body(int n, const std::string& queue) {
  const std::string spec =
      R"({"type":"bench","queue":")" + queue + R"(","payload":)" + kPayload + "}";
  if (n == 1) return spec;
  std::string body = R"({"tasks":[)";
  for (int i = 0; i < n; ++i) {
    if (i) body += ',';
    body += spec;
  }
  return body + "]}";
}

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  // `lat` gets the latency of every request, or in overload mode of every
  // accepted one.
  Conn(asio::io_context& ioc, const Options& o, Shared* s, std::vector<double>* lat)
      : stream_(ioc), opts_(o), shared_(s), lat_(lat) {}

  void Start(const asio::ip::tcp::endpoint& ep) {
    stream_.async_connect(ep, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        std::fprintf(stderr, "connect: %s\n", ec.message().c_str());
        return;
      }
      self->stream_.socket().set_option(asio::ip::tcp::no_delay(true));
      self->Next();
    });
  }

 private:
  void Next() {
    int n = opts_.batch;
    if (opts_.seconds > 0) {
      if (Clock::now() >= shared_->deadline) return;
    } else {
      long first = shared_->next.fetch_add(opts_.batch);
      if (first >= opts_.tasks) return;
      n = static_cast<int>(std::min<long>(opts_.batch, opts_.tasks - first));
    }
    req_ = {http::verb::post, "/v1/tasks", 11};
    req_.set(http::field::host, opts_.host);
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(true);
    req_.body() = Body(n, opts_.queue);
    req_.prepare_payload();
    started_ = Clock::now();
    http::async_write(stream_, req_, [self = shared_from_this(), n](beast::error_code ec, std::size_t) {
      if (ec) return self->Fail(ec);
      self->res_ = {};
      http::async_read(self->stream_, self->buf_, self->res_,
                       [self, n](beast::error_code ec2, std::size_t) {
                         if (ec2) return self->Fail(ec2);
                         const double ms =
                             std::chrono::duration<double, std::milli>(Clock::now() - self->started_).count();
                         const bool overload = self->opts_.seconds > 0;
                         if (!overload) self->lat_->push_back(ms);
                         if (self->res_.result_int() / 100 == 2) {
                           self->shared_->done += n;
                           if (overload) self->lat_->push_back(ms);
                         } else if (overload && self->res_.result_int() == 429) {
                           self->shared_->refused += n;
                         } else {
                           self->shared_->errors += n;
                           if (self->shared_->errors <= n) {
                             std::fprintf(stderr, "HTTP %u: %s\n", self->res_.result_int(),
                                          self->res_.body().c_str());
                           }
                         }
                         self->Next();
                       });
    });
  }
  void Fail(beast::error_code ec) { std::fprintf(stderr, "connection: %s\n", ec.message().c_str()); }

  beast::tcp_stream stream_;
  const Options& opts_;
  Shared* shared_;
  std::vector<double>* lat_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  Clock::time_point started_;
};

}  // namespace

int main(int argc, char** argv) {
  using dray::bench::Percentile;
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::atoi(v.c_str());
    else if (k == "--tasks") o.tasks = std::atol(v.c_str());
    else if (k == "--connections") o.connections = std::atoi(v.c_str());
    else if (k == "--batch") o.batch = std::max(1, std::atoi(v.c_str()));
    else if (k == "--threads") o.threads = std::max(1, std::atoi(v.c_str()));
    else if (k == "--queue") o.queue = v;
    else if (k == "--seconds") o.seconds = std::atof(v.c_str());
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  Shared shared;
  std::vector<std::unique_ptr<asio::io_context>> ctxs;
  std::vector<std::vector<double>> lats(static_cast<std::size_t>(o.connections));
  for (int t = 0; t < o.threads; ++t) ctxs.push_back(std::make_unique<asio::io_context>(1));
  asio::ip::tcp::endpoint ep(asio::ip::make_address(o.host), static_cast<unsigned short>(o.port));
  auto start = Clock::now();
  shared.deadline = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(o.seconds));
  for (int c = 0; c < o.connections; ++c) {
    auto conn = std::make_shared<Conn>(*ctxs[static_cast<std::size_t>(c % o.threads)], o, &shared,
                                       &lats[static_cast<std::size_t>(c)]);
    conn->Start(ep);
  }
  std::vector<std::thread> threads;
  for (auto& ctx : ctxs) threads.emplace_back([&ctx] { ctx->run(); });
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lats) all.insert(all.end(), l.begin(), l.end());

  if (o.seconds > 0) {
    const long offered = shared.done.load() + shared.refused.load();
    std::printf("Overload: seconds=%.0f batch=%d connections=%d client_threads=%d payload=%zuB cores=%ld\n",
                o.seconds, o.batch, o.connections, o.threads, std::strlen(kPayload),
                sysconf(_SC_NPROCESSORS_ONLN));
    std::printf("  accepted=%ld refused_429=%ld other_errors=%ld elapsed=%.2fs offered=%.0f tasks/s "
                "rate=%.0f tasks/s refused_share=%.2f\n",
                shared.done.load(), shared.refused.load(), shared.errors.load(), secs,
                static_cast<double>(offered) / secs, static_cast<double>(shared.done.load()) / secs,
                offered ? static_cast<double>(shared.refused.load()) / static_cast<double>(offered) : 0.0);
    std::printf("  accepted request latency ms: p50=%.2f p99=%.2f p99.9=%.2f max=%.2f\n",
                Percentile(all, 0.50), Percentile(all, 0.99), Percentile(all, 0.999),
                Percentile(all, 1.0));
    return shared.errors.load() == 0 ? 0 : 1;
  }
  std::printf("W1 enqueue: tasks=%ld batch=%d connections=%d client_threads=%d payload=%zuB cores=%ld\n",
              o.tasks, o.batch, o.connections, o.threads, std::strlen(kPayload),
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("  acknowledged=%ld errors=%ld elapsed=%.2fs rate=%.0f tasks/s\n", shared.done.load(),
              shared.errors.load(), secs, static_cast<double>(shared.done.load()) / secs);
  std::printf("  request latency ms: p50=%.2f p99=%.2f p99.9=%.2f max=%.2f\n",
              Percentile(all, 0.50), Percentile(all, 0.99), Percentile(all, 0.999),
              Percentile(all, 1.0));
  return shared.errors.load() == 0 ? 0 : 1;
}
