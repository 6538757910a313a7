// The HTTP/1.1 server: accepts connections, reads requests within bounds,
// routes them, and writes the answers handlers give, now or later.
//
// Threading: the io_context may be run by any number of threads; the
// acceptor and each connection run on their own strand. Listen() is called
// once, before Start(); Start/StopAccepting/Shutdown/connections may then be
// called from any thread. Handlers run on their connection's strand and must
// not block it: a long answer keeps the Responder and returns.
//
// One request at a time per connection (no pipelining): while a handler has
// not answered, the connection reads nothing and has no deadline, since
// long-polls keep their own.
//
// Bounds and errors, every one answered as {"error":{"code","message"}}:
// - a body over max_body_bytes: 413 too_large, then the connection closes;
// - a header block over 64 KiB: 431 too_large, then close;
// - a request that is not HTTP/1.x: 400 malformed, then close;
// - past max_connections: 503 unavailable, then close.
// Before closing after such an answer the server stops sending and drains
// what the client still sends for up to 2 s, so the client reads the answer
// instead of a reset. A request header not complete within header_timeout
// (counted from the connection's start or the request's first byte), a body
// not complete within body_timeout, no new request within idle_timeout on a
// kept-alive connection, or a response not written within write_timeout
// closes the connection without an answer.
#pragma once

#include <chrono>
#include <cstddef>
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
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds write_timeout{60'000};
};

class HttpServer {
 public:
  // `ioc` and `router` must outlive every connection: call Shutdown() and let
  // the io_context run out of work before destroying them.
  HttpServer(boost::asio::io_context& ioc, const Router& router, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds "host:port": an IPv4 or IPv6 literal ("[::1]:7070"), a host name
  // (its first address), or "" for all IPv4 interfaces. Port 0 picks a free
  // one. InvalidArgument for a bad address, Unavailable if it cannot bind.
  Status Listen(const std::string& host_port);
  std::uint16_t port() const;
  std::string address() const;  // "host:port" as bound

  void Start();          // begins accepting
  void StopAccepting();  // closes the listening socket; open connections go on
  // Stops accepting and closes idle connections and connections still reading
  // a request; a connection whose request a handler holds is closed once its
  // answer is written (with Connection: close). After that the server has no
  // pending operation, so once every held Responder has been called the
  // io_context runs out of work and run() returns.
  void Shutdown();

  // Open connections, counting those being refused with 503.
  std::size_t connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace dray
