// The HTTP/1.1 server: accepts connections, reads requests within bounds,
// routes them, and writes the answers handlers give, now or later.
//
// Threading: the io_context may be run by any number of threads; each
// connection runs on its own strand. Listen/Start/StopAccepting/Shutdown may
// be called from any thread.
//
// Bounds: a body over max_body_bytes gets 413 and the connection closes; a
// malformed request gets 400; a request header not complete within
// header_timeout, or no request within idle_timeout on a kept-alive
// connection, closes the connection; past max_connections a new connection
// gets 503 and is closed. While a handler has not answered, the connection
// waits without a deadline (long-polls set their own).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "dray/status.h"
#include "server/http/router.h"

namespace dray {

struct HttpServerOptions {
  std::size_t max_body_bytes = 16 << 20;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{120'000};
  std::size_t max_connections = 10'000;
  std::string server_name = "dray";
};

class HttpServer {
 public:
  // `router` must outlive the server.
  HttpServer(boost::asio::io_context& ioc, const Router& router, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds "host:port" ("[::1]:0" for IPv6; port 0 picks a free one).
  Status Listen(const std::string& host_port);
  std::uint16_t port() const;
  std::string address() const;  // "host:port" as bound

  void Start();          // begins accepting
  void StopAccepting();  // closes the listening socket
  // Stops accepting, closes idle connections, and closes busy ones once
  // their answer is written. The io_context then runs out of work.
  void Shutdown();

  std::size_t connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace dray
