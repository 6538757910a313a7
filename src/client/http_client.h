// A small blocking HTTP/1.1 client with a pool of keep-alive connections.
//
// Threading: Request() may be called from many threads at once; each call
// takes a connection from the pool (or opens one) and returns it after.
//
// Retries: a request that fails on a *reused* idle connection before any
// byte of the answer arrived is sent once more on a fresh connection. That
// is the stale keep-alive case: the server closed the connection while it
// sat idle in the pool, and the Dray server closes only idle connections
// (never one with a request in flight), so the first send was not processed.
// A server that crashed after reading the request but before answering looks
// the same, so against such a server this one resend may repeat a POST; every
// mutating Dray call is safe under that (a repeated complete/fail/heartbeat is
// refused as stale; give submits an idempotency key). Nothing else is resent:
// a failure on a fresh connection, after part of the answer arrived, after a
// timeout or after CancelAll() is returned as Unavailable or DeadlineExceeded
// and the caller decides.
//
// Timeouts: connect, write and read of one request share one deadline,
// `timeout`, enforced by beast::tcp_stream; nothing waits longer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dray/status.h"

namespace dray {

struct HttpReply {
  int status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
};

class HttpClient {
 public:
  // `base_url`: "http://host:port" (no TLS yet).
  static StatusOr<std::unique_ptr<HttpClient>> Create(const std::string& base_url,
                                                      std::size_t max_idle);
  ~HttpClient();

  StatusOr<HttpReply> Request(const std::string& method, const std::string& target,
                              const std::string& body, std::chrono::milliseconds timeout);

  // GET `target` on a connection of its own and hand the body to `on_data`
  // piece by piece as it arrives (server-sent events), until `on_data`
  // returns false (OK), the server ends the answer (OK), no byte comes for
  // `idle_timeout` (DeadlineExceeded) or CancelAll() (Unavailable). A
  // non-2xx answer is returned whole, as Request would, without calling
  // `on_data`. `headers`: extra request headers.
  StatusOr<HttpReply> Stream(const std::string& target,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             std::chrono::milliseconds idle_timeout,
                             const std::function<bool(std::string_view)>& on_data);

  // Aborts every request in flight (they return Unavailable). With
  // `forever`, every later request fails the same way at once. Thread-safe.
  void CancelAll(bool forever = false);

 private:
  struct Conn;
  HttpClient(std::string host, std::string port, std::size_t max_idle);
  void Close(Conn* c);  // takes mu_
  StatusOr<HttpReply> Once(Conn* c, const std::string& method, const std::string& target,
                           const std::string& body, std::chrono::milliseconds timeout,
                           std::uint64_t epoch, bool* nothing_received);
  bool Cancelled(std::uint64_t epoch);  // CancelAll() ran since `epoch`; takes mu_

  const std::string host_;
  const std::string port_;
  const std::size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by mu_
  std::vector<Conn*> busy_;                  // guarded by mu_
  std::atomic<std::uint64_t> cancel_epoch_{0};  // bumped by CancelAll()
  bool shut_down_ = false;                      // CancelAll(true) ran; guarded by mu_
  // Conn::open and closing a Conn's socket are guarded by mu_ as well, so
  // that CancelAll() never touches a closed (and maybe reused) descriptor.
};

}  // namespace dray
