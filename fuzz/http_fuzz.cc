// libFuzzer target: HTTP request handling, in process, end to end. The whole
// server (HttpServer, Router, the API, TaskService, the engine and a SQLite
// store in a temp dir) runs once per fuzzing process on 127.0.0.1; each
// input is sent as raw bytes on a fresh connection, the write side is shut,
// and whatever comes back is read until the server closes. Whatever the
// bytes, the server must answer with well-formed HTTP, never 500, never
// crash, and keep serving: each input ends with a probe request on a
// second connection that must get 200.
//
// The store runs without fsync (durability is the chaos tests' business)
// and long-polls are capped at 10 ms so that an input cannot stall the run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "core/clock.h"
#include "server/api.h"
#include "server/http/http_server.h"
#include "server/http/router.h"
#include "server/server_config.h"
#include "server/task_service.h"
#include "store/sqlite/sqlite_store.h"

namespace {

namespace http = boost::beast::http;

void Require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "http_fuzz: %s\n", what);
    std::abort();
  }
}

struct Server {
  boost::asio::io_context ioc{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{ioc.get_executor()};
  std::unique_ptr<dray::Store> store;
  std::unique_ptr<dray::TaskService> service;
  dray::Router router;
  std::unique_ptr<dray::HttpServer> server;
  std::thread thread;
  int port = 0;

  Server() {
    char tmpl[] = "/tmp/dray-http-fuzz-XXXXXX";
    Require(mkdtemp(tmpl) != nullptr, "mkdtemp");
    dray::SqliteOptions so;
    so.path = std::string(tmpl) + "/dray.db";
    so.synchronous_full = false;
    auto s = dray::OpenSqliteStore(so);
    Require(s.ok(), "open store");
    store = std::move(*s);
    dray::ServerConfig config;
    config.max_wait_ms = 10;
    config.max_live_tasks = 100'000;
    service = std::make_unique<dray::TaskService>(ioc, store.get(), dray::SystemClock::Default(), config);
    Require(service->Recover().ok(), "recover");
    dray::ApiOptions api{config.limits, config.max_wait_ms};
    api.limits.max_body_bytes = 1 << 20;
    dray::RegisterApi(&router, service.get(), api);
    dray::HttpServerOptions ho;
    ho.max_body_bytes = 1 << 20;
    ho.header_timeout = std::chrono::milliseconds(500);
    ho.body_timeout = std::chrono::milliseconds(500);
    server = std::make_unique<dray::HttpServer>(ioc, router, ho);
    Require(server->Listen("127.0.0.1:0").ok(), "listen");
    port = server->port();
    service->Start();
    server->Start();
    thread = std::thread([this] { ioc.run(); });
  }
};

Server& TheServer() {
  static Server* s = new Server();  // lives for the process: libFuzzer exits without unwinding
  return *s;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  Require(fd >= 0, "socket");
  timeval tv{2, 0};  // an answer slower than this is a hang
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // Each connection from its own loopback source address: thousands of
  // connections a second would otherwise reuse ports still in TIME_WAIT
  // (Linux allows it on loopback), and such a reused connection can stall
  // for a SYN retransmission, which reads as a server that hangs.
  static std::uint32_t next = 0;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7f010000u | (next++ % 0xfffeu + 1));  // 127.1.x.y
  // The port is chosen at connect, per 4-tuple, not at bind, per address:
  // bind's choice would still run out of ports.
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  Require(bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0, "bind");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    // Interrupted by libFuzzer's alarm, the connect goes on by itself:
    // wait for it to finish and take its result.
    int err = errno;
    if (err == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      while (poll(&p, 1, 2000) < 0 && errno == EINTR) {
      }
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    if (err != 0) {
      std::fprintf(stderr, "http_fuzz: connect: %s\n", std::strerror(err));
      std::abort();
    }
  }
  return fd;
}

// Closes with a reset instead of a FIN: this side closes first, and at
// thousands of connections a second TIME_WAIT would use up the ports.
void CloseNow(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

// Reads until the server closes; false on a timeout.
bool ReadAll(int fd, std::string* out) {
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;  // libFuzzer's timeout alarm ticks every second
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    out->append(buf, static_cast<std::size_t>(n));
  }
}

// Every response in `bytes` parses and none is a 500.
void CheckResponses(const std::string& bytes) {
  boost::beast::flat_buffer buf;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    http::response_parser<http::string_body> p;
    p.body_limit(64 << 20);
    p.eager(true);
    boost::beast::error_code ec;
    const std::size_t used = p.put(boost::asio::buffer(bytes.data() + offset, bytes.size() - offset), ec);
    if ((!ec || ec == http::error::need_more) && !p.is_done() && p.is_header_done() &&
        !p.chunked() && !p.content_length() && offset + used == bytes.size()) {
      // A body delimited by the close (a stream, GET /v1/stream): it ends here.
      ec = {};
      p.put_eof(ec);
    }
    Require(!ec && p.is_done(), "a response that does not parse");
    Require(p.get().result_int() != 500, "a 500 answer");
    offset += used;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Server& s = TheServer();
  int fd = Connect(s.port);
  std::size_t sent = 0;
  while (sent < size) {
    ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server may close early on a bad request
    sent += static_cast<std::size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string answer;
  Require(ReadAll(fd, &answer), "no close within 2 s");
  CloseNow(fd);
  CheckResponses(answer);

  // The server still serves.
  int probe = Connect(s.port);
  const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  Require(send(probe, req, sizeof req - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof req - 1), "probe send");
  std::string probe_answer;
  Require(ReadAll(probe, &probe_answer), "probe timed out");
  CloseNow(probe);
  Require(probe_answer.rfind("HTTP/1.1 200", 0) == 0, "the server stopped serving");
  // Both connections are gone from the server soon after: a session that
  // outlives its client would, over many inputs, use up the descriptors.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (s.server->connections() != 0) {
    Require(std::chrono::steady_clock::now() < deadline, "a connection outlived its client by 3 s");
    std::this_thread::sleep_for(std::chrono::microseconds(50));  // poll interval
  }
  return 0;
}
