#include "client/http_client.h"

#include <algorithm>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <sys/socket.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace dray {

struct HttpClient::Conn {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool open = false;
};

HttpClient::HttpClient(std::string host, std::string port, std::size_t max_idle)
    : host_(std::move(host)), port_(std::move(port)), max_idle_(max_idle) {}

HttpClient::~HttpClient() = default;

StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(const std::string& base_url,
                                                         std::size_t max_idle) {
  std::string rest = base_url;
  const std::string scheme = "http://";
  if (rest.rfind(scheme, 0) == 0) {
    rest = rest.substr(scheme.size());
  } else if (rest.find("://") != std::string::npos) {
    return InvalidArgument("only http:// servers are supported, got " + base_url);
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::size_t colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || port.empty()) return InvalidArgument("bad server address " + base_url);
  return std::unique_ptr<HttpClient>(new HttpClient(host, port, max_idle));
}

void HttpClient::Close(Conn* c) {
  std::lock_guard<std::mutex> lock(mu_);
  beast::error_code ignored;
  c->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  c->stream.close();
  c->open = false;
}

StatusOr<HttpReply> HttpClient::Once(Conn* c, const std::string& method, const std::string& target,
                                     const std::string& body, std::chrono::milliseconds timeout,
                                     std::uint64_t epoch, bool* nothing_received) {
  *nothing_received = true;
  beast::error_code ec;
  if (!c->open) {
    asio::ip::tcp::resolver resolver(c->ioc);
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (ec) return Unavailable("cannot resolve " + host_ + ": " + ec.message());
    c->stream.expires_after(timeout);
    c->stream.async_connect(endpoints, [&](beast::error_code e, const auto&) { ec = e; });
    c->ioc.restart();
    c->ioc.run();
    if (ec) return Unavailable("cannot connect to " + host_ + ":" + port_ + ": " + ec.message());
    c->stream.socket().set_option(asio::ip::tcp::no_delay(true), ec);
    std::lock_guard<std::mutex> lock(mu_);
    c->open = true;
    // CancelAll() skips connections that are not open yet; one that ran
    // while this one was connecting is seen here instead.
    if (cancel_epoch_.load(std::memory_order_relaxed) != epoch) {
      beast::error_code ignored;
      c->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      c->stream.close();
      c->open = false;
      return Unavailable(method + " " + target + ": interrupted");
    }
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "dray-cpp");
  req.keep_alive(true);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(1u << 30);
  c->stream.expires_after(timeout);
  std::size_t received = 0;
  http::async_write(c->stream, req, [&](beast::error_code e, std::size_t) {
    if (e) {
      ec = e;
      return;
    }
    http::async_read(c->stream, c->buffer, parser, [&](beast::error_code e2, std::size_t n) {
      ec = e2;
      received = n;
    });
  });
  c->ioc.restart();
  c->ioc.run();
  if (ec) {
    *nothing_received = received == 0 && !parser.got_some() && c->buffer.size() == 0;
    Close(c);
    c->buffer.clear();
    if (ec == beast::error::timeout) {
      return DeadlineExceeded(method + " " + target + ": no answer within " +
                              std::to_string(timeout.count()) + " ms");
    }
    return Unavailable(method + " " + target + ": " + ec.message());
  }
  auto& res = parser.get();
  HttpReply reply;
  reply.status = static_cast<int>(res.result_int());
  reply.body = std::move(res.body());
  if (auto it = res.find(http::field::retry_after); it != res.end()) {
    reply.retry_after = std::string(it->value());
  }
  if (!res.keep_alive()) Close(c);
  return reply;
}

StatusOr<HttpReply> HttpClient::Request(const std::string& method, const std::string& target,
                                        const std::string& body,
                                        std::chrono::milliseconds timeout) {
  std::unique_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return Unavailable(method + " " + target + ": the client was shut down");
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!c) c = std::make_unique<Conn>();
  std::uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_.push_back(c.get());
    // Read under mu_, where CancelAll() bumps it: a cancel either comes
    // before (and this request sees a new epoch later) or finds it in busy_.
    epoch = cancel_epoch_.load(std::memory_order_relaxed);
  }
  const bool was_reused = c->open;
  bool nothing;
  auto r = Once(c.get(), method, target, body, timeout, epoch, &nothing);
  if (!r.ok() && was_reused && nothing && r.status().code() == StatusCode::kUnavailable &&
      !Cancelled(epoch)) {
    r = Once(c.get(), method, target, body, timeout, epoch, &nothing);  // stale keep-alive: see header
  }
  std::lock_guard<std::mutex> lock(mu_);
  busy_.erase(std::find(busy_.begin(), busy_.end(), c.get()));
  if (c->open && idle_.size() < max_idle_) idle_.push_back(std::move(c));
  return r;
}

StatusOr<HttpReply> HttpClient::Stream(
    const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers,
    std::chrono::milliseconds idle_timeout, const std::function<bool(std::string_view)>& on_data) {
  auto c = std::make_unique<Conn>();
  std::uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return Unavailable("GET " + target + ": the client was shut down");
    busy_.push_back(c.get());
    epoch = cancel_epoch_.load(std::memory_order_relaxed);
  }
  auto done = [&](StatusOr<HttpReply> r) {
    if (c->open) Close(c.get());
    std::lock_guard<std::mutex> lock(mu_);
    busy_.erase(std::find(busy_.begin(), busy_.end(), c.get()));
    return r;
  };
  beast::error_code ec;
  asio::ip::tcp::resolver resolver(c->ioc);
  auto endpoints = resolver.resolve(host_, port_, ec);
  if (ec) return done(Unavailable("cannot resolve " + host_ + ": " + ec.message()));
  c->stream.expires_after(idle_timeout);
  c->stream.async_connect(endpoints, [&](beast::error_code e, const auto&) { ec = e; });
  c->ioc.run();
  if (ec) return done(Unavailable("cannot connect to " + host_ + ":" + port_ + ": " + ec.message()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    c->open = true;  // from here CancelAll() shuts the socket down
  }
  if (Cancelled(epoch)) return done(Unavailable("GET " + target + ": interrupted"));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "dray-cpp");
  req.set(http::field::accept, "text/event-stream");
  for (const auto& [name, value] : headers) req.set(name, value);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  char piece[16 << 10];
  bool header_done = false, stop = false;
  std::string error_body;
  std::function<void()> read_more;
  read_more = [&] {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof piece;
    c->stream.expires_after(idle_timeout);
    http::async_read_some(c->stream, c->buffer, parser, [&](beast::error_code e, std::size_t) {
      if (e == http::error::need_buffer) e = {};
      if (e) {
        ec = e;
        return;
      }
      if (!header_done && parser.is_header_done()) header_done = true;
      const std::size_t got = sizeof piece - parser.get().body().size;
      if (header_done && got > 0) {
        const std::string_view data(piece, got);
        if (parser.get().result_int() / 100 != 2) {
          error_body.append(data);
        } else if (!on_data(data)) {
          stop = true;
          return;
        }
      }
      if (parser.is_done()) return;
      read_more();
    });
  };
  c->stream.expires_after(idle_timeout);
  http::async_write(c->stream, req, [&](beast::error_code e, std::size_t) {
    if (e) {
      ec = e;
      return;
    }
    read_more();
  });
  c->ioc.restart();
  c->ioc.run();
  HttpReply reply;
  if (parser.is_header_done()) {
    reply.status = static_cast<int>(parser.get().result_int());
    if (auto it = parser.get().find(http::field::retry_after); it != parser.get().end()) {
      reply.retry_after = std::string(it->value());
    }
  }
  reply.body = std::move(error_body);
  if (stop || (!ec && parser.is_done())) return done(reply);
  if (ec == beast::error::timeout) {
    return done(DeadlineExceeded("GET " + target + ": nothing for " +
                                 std::to_string(idle_timeout.count()) + " ms"));
  }
  if (Cancelled(epoch)) return done(Unavailable("GET " + target + ": interrupted"));
  if (ec == http::error::end_of_stream || ec == asio::error::eof) {
    return done(reply);  // the server closed the stream
  }
  return done(Unavailable("GET " + target + ": " + ec.message()));
}

bool HttpClient::Cancelled(std::uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  return cancel_epoch_.load(std::memory_order_relaxed) != epoch;
}

void HttpClient::CancelAll(bool forever) {
  std::lock_guard<std::mutex> lock(mu_);
  if (forever) shut_down_ = true;
  // Every read and write of the epoch happens under mu_, so relaxed order is
  // enough; the atomic only keeps a stray unlocked read well-defined.
  cancel_epoch_.fetch_add(1, std::memory_order_relaxed);
  // Shutting the socket down makes the pending read finish at once. The fd
  // stays valid meanwhile: connections are only closed under mu_.
  for (Conn* c : busy_) {
    if (c->open) ::shutdown(c->stream.socket().native_handle(), SHUT_RDWR);
  }
}

}  // namespace dray
