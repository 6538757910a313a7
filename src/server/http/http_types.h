// Requests and responses as handlers see them, and the handler signature.
// Light on purpose: included by every handler, it pulls in nothing of Beast
// but the verb enum.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>  // Boost 1.81's verb.hpp uses std::ostream without including it
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/verb.hpp>

#include "core/json_writer.h"  // AppendJsonString

namespace dray {

// Tells a handler that holds a request (a long-poll) that its client went
// away before the answer was written, so that it can give back what it
// reserved for that client. Thread-safe.
class ClientGone {
 public:
  // Runs `fn` once, on any thread, when the client goes away; at once if it
  // already has. A later OnGone replaces an earlier one that has not run.
  void OnGone(std::function<void()> fn);
  // Called by the server: `watch` runs (once) when a handler first asks,
  // so that only requests whose handler cares are watched.
  void SetWatch(std::function<void()> watch);
  void Fire();

 private:
  std::mutex mu_;
  bool fired_ = false;             // guarded by mu_
  std::function<void()> fn_;       // guarded by mu_
  std::function<void()> watch_;    // guarded by mu_
};

struct HttpRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  unsigned version = 11;                       // 10 for HTTP/1.0, 11 for HTTP/1.1
  std::string target;                          // as sent: raw path and query
  std::string path;                            // percent-decoded, without the query
  std::map<std::string, std::string> query;    // percent-decoded ('+' is a space); last value wins
  std::map<std::string, std::string> params;   // from the route pattern, percent-decoded
  std::vector<std::pair<std::string, std::string>> headers;  // in order; names lower-case
  std::string body;
  std::string content_type;                    // the Content-Type header, or ""
  std::string remote;                          // peer "ip:port"
  // Set by the server (null when a test calls a Router directly).
  std::shared_ptr<ClientGone> gone;

  // The value of the first header with this name (any case), or "".
  std::string header(std::string_view name) const;
};

// The body of a streamed answer (server-sent events): bytes written here
// reach the client as they come, until the producer ends the stream or the
// client goes away. Thread-safe.
class HttpStream {
 public:
  // `max_queued_bytes`: a client that falls this far behind is cut off
  // (the connection closes) rather than the server buffering without end.
  explicit HttpStream(std::size_t max_queued_bytes = 8 << 20);
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  // Queues bytes for the client. False once the stream is closed (the
  // client left, was cut off, or End was called): stop producing.
  bool Write(std::string_view bytes);
  // Ends the answer: the connection closes once what is queued is sent.
  void End();
  // Runs `fn` once when the stream closes for any reason; at once if it has.
  void OnClose(std::function<void()> fn);

  // For the server: `wake` runs (on any thread) when bytes or the end are
  // queued; Take hands over what is queued, `*ended` once End was called
  // and nothing is left; Closed marks the connection gone.
  void Attach(std::function<void()> wake);
  std::string Take(bool* ended);
  void Closed();

 private:
  const std::size_t max_queued_;
  std::mutex mu_;
  std::string queued_;              // guarded by mu_
  bool ended_ = false;              // guarded by mu_
  bool closed_ = false;             // guarded by mu_
  std::function<void()> wake_;      // guarded by mu_
  std::function<void()> on_close_;  // guarded by mu_
};

struct HttpResponse {
  int status = 200;  // 200..599; anything else is sent as 500
  std::string body;
  std::string content_type = "application/json";  // sent when the body is not empty
  // Extra headers such as Retry-After or Location. The server owns framing:
  // Content-Length, Transfer-Encoding and Connection given here are ignored,
  // and so is a header whose name or value holds CR, LF or NUL.
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, `body` is ignored: the status and headers are sent with no
  // Content-Length, then what the producer writes to the stream, and the
  // connection closes when the stream ends or the client leaves.
  std::shared_ptr<HttpStream> stream;

  static HttpResponse Json(int status, std::string body);
  // {"error":{"code":code,"message":message}}, both JSON-escaped; invalid
  // UTF-8 in either becomes U+FFFD so the body is always valid JSON.
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
};


// Sends the answer to one request. A handler calls it exactly once, from any
// thread, now or later (long-poll); later calls are ignored, and calling it
// after the client left is harmless. A Responder that is destroyed without
// having been called answers 500, so a forgotten request never hangs its
// connection. A Responder must not outlive the io_context the server runs on.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest&&, Responder)>;

}  // namespace dray
