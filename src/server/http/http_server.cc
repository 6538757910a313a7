#include "server/http/http_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace dray {

namespace {
class Session;
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, const Router& r, HttpServerOptions o)
      : ioc(io), router(r), options(std::move(o)), acceptor(asio::make_strand(io)) {}

  void DoAccept();
  void Register(Session* s, const std::shared_ptr<Session>& sp);
  void Unregister(Session* s);

  asio::io_context& ioc;
  const Router& router;
  const HttpServerOptions options;
  tcp::acceptor acceptor;
  std::string address;
  std::uint16_t port = 0;
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> shutting_down{false};
  std::mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu
};

namespace {

void ParseQuery(std::string_view q, std::map<std::string, std::string>* out) {
  std::size_t i = 0;
  while (i <= q.size()) {
    std::size_t amp = q.find('&', i);
    if (amp == std::string_view::npos) amp = q.size();
    std::string_view pair = q.substr(i, amp - i);
    if (!pair.empty()) {
      std::size_t eq = pair.find('=');
      std::string key = PercentDecode(pair.substr(0, eq), true);
      std::string value = eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true);
      (*out)[std::move(key)] = std::move(value);
    }
    i = amp + 1;
  }
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    server_->connections++;
  }
  ~Session() {
    server_->Unregister(this);
    server_->connections--;
  }

  void Start(bool reject) {
    server_->Register(this, shared_from_this());
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), reject] {
      if (reject) {
        HttpResponse r = HttpResponse::Error(503, "unavailable", "too many connections");
        self->keep_alive_ = false;
        self->Write(std::move(r));
        return;
      }
      self->DoRead();
    });
  }

  // On the session's strand: close now if idle, else after the answer.
  void CloseWhenIdle() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (self->reading_) self->Close();
    });
  }

 private:
  void DoRead() {
    if (closing_ || server_->shutting_down) return Close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(first_ ? server_->options.header_timeout : server_->options.idle_timeout);
    reading_ = true;
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    reading_ = false;
    first_ = false;
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return Write(HttpResponse::Error(
          413, "too_large",
          "request body is larger than " + std::to_string(server_->options.max_body_bytes) + " bytes"));
    }
    if (ec == http::error::header_limit) {
      keep_alive_ = false;
      return Write(HttpResponse::Error(431, "too_large", "request header is too large"));
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec) {
      keep_alive_ = false;
      return Write(HttpResponse::Error(400, "malformed", "malformed HTTP request: " + ec.message()));
    }
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    HttpRequest req;
    req.method = msg.method();
    req.target = std::string(msg.target());
    std::string_view target = msg.target();
    std::size_t q = target.find('?');
    req.path = PercentDecode(target.substr(0, q), false);
    if (q != std::string_view::npos) ParseQuery(target.substr(q + 1), &req.query);
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    beast::error_code ignored;
    auto ep = stream_.socket().remote_endpoint(ignored);
    if (!ignored) req.remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    // No deadline while the handler works: long-polls answer on their own time.
    stream_.expires_never();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    Responder respond = [self = shared_from_this(), answered](HttpResponse res) {
      if (answered->exchange(true)) return;
      asio::post(self->stream_.get_executor(),
                 [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    };
    server_->router.Dispatch(std::move(req), std::move(respond));
  }

  void Write(HttpResponse res) {
    auto msg = std::make_shared<http::response<http::string_body>>();
    msg->version(11);
    msg->result(static_cast<unsigned>(res.status));
    msg->set(http::field::server, server_->options.server_name);
    msg->set(http::field::content_type, res.content_type);
    for (auto& [k, v] : res.headers) msg->set(k, v);
    const bool keep = keep_alive_ && !closing_ && !server_->shutting_down;
    msg->keep_alive(keep);
    msg->body() = std::move(res.body);
    msg->prepare_payload();
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg, keep](beast::error_code ec, std::size_t) {
                        if (ec || !keep) return self->Close();
                        self->DoRead();
                      });
  }

  void Close() {
    reading_ = false;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<HttpServer::Impl> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  bool first_ = true;
  bool reading_ = false;  // waiting for a request: safe to close
  bool closing_ = false;
};

}  // namespace

void HttpServer::Impl::Register(Session* s, const std::shared_ptr<Session>& sp) {
  std::lock_guard<std::mutex> lock(mu);
  sessions[s] = sp;
}

void HttpServer::Impl::Unregister(Session* s) {
  std::lock_guard<std::mutex> lock(mu);
  sessions.erase(s);
}

void HttpServer::Impl::DoAccept() {
  acceptor.async_accept(asio::make_strand(ioc), [self = shared_from_this()](
                                                    beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      const bool reject = self->connections.load() >= self->options.max_connections;
      std::make_shared<Session>(std::move(socket), self)->Start(reject);
    }
    self->DoAccept();
  });
}

HttpServer::HttpServer(asio::io_context& ioc, const Router& router, HttpServerOptions options)
    : impl_(std::make_shared<Impl>(ioc, router, std::move(options))) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen(const std::string& host_port) {
  std::size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("listen address must be host:port, got " + host_port);
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(host_port.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) return InvalidArgument("bad port in " + host_port);
  beast::error_code ec;
  auto addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return InvalidArgument("bad host in " + host_port + ": " + ec.message());
  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + host_port + ": " + ec.message());
  auto bound = a.local_endpoint(ec);
  impl_->port = bound.port();
  std::string h = bound.address().to_string();
  impl_->address = (bound.address().is_v6() ? "[" + h + "]" : h) + ":" + std::to_string(bound.port());
  return Status::Ok();
}

std::uint16_t HttpServer::port() const { return impl_->port; }
std::string HttpServer::address() const { return impl_->address; }
std::size_t HttpServer::connections() const { return impl_->connections.load(); }

void HttpServer::Start() {
  asio::dispatch(impl_->acceptor.get_executor(), [impl = impl_] { impl->DoAccept(); });
}

void HttpServer::StopAccepting() {
  asio::dispatch(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
}

void HttpServer::Shutdown() {
  impl_->shutting_down = true;
  StopAccepting();
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [p, w] : impl_->sessions) {
      if (auto s = w.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->CloseWhenIdle();
}

}  // namespace dray
