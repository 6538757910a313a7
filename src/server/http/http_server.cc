#include "server/http/http_server.h"

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <exception>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = beast::error_code;

namespace dray {

namespace {

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kReadChunk = 4096;
// How long a connection closed after an error answer keeps draining input,
// so that the client reads the answer rather than a reset.
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

class Session;

}  // namespace

// Shared by the HttpServer, its accept loop and every session, so that none
// of them outlives what it uses.
struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, const Router& r, HttpServerOptions o)
      : ioc(io),
        router(r),
        options(std::move(o)),
        acceptor(asio::make_strand(io)),
        accept_retry(acceptor.get_executor()) {}

  // On the acceptor's strand.
  void DoAccept();
  void OnAccept(error_code ec, tcp::socket socket);
  void CloseAcceptor();

  void Register(Session* s, std::weak_ptr<Session> w);
  void Unregister(Session* s);

  asio::io_context& ioc;
  const Router& router;
  const HttpServerOptions options;
  tcp::acceptor acceptor;           // on its strand once Start() ran
  asio::steady_timer accept_retry;  // on the acceptor's strand
  std::string address;              // written by Listen() before Start(), then read-only
  std::uint16_t port = 0;           // likewise
  // Both atomics only count or flag; nothing else is published through them,
  // so sequential consistency is more than enough and keeps reasoning simple.
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> shutting_down{false};
  std::mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu
};

namespace {

bool SafeHeader(std::string_view name, std::string_view value) {
  auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  if (name.empty()) return false;
  for (char c : name) {
    if (bad(c) || c == ':' || c == ' ') return false;
  }
  for (char c : value) {
    if (bad(c)) return false;
  }
  return true;
}

// One connection. Everything but Deliver() and CloseWhenIdle() runs on the
// session's strand; those two only post onto it.
//
// Phases: kIdle (waiting for the next request's first byte), kReading (a
// request's header or body), kHandling (a handler holds the request),
// kWriting, kLingering (draining input before closing after an error answer),
// kClosed. Every completion handler first checks for kClosed, because a
// Close() from Shutdown cancels whatever operation was pending.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    ++server_->connections;
    error_code ec;
    tcp::endpoint ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() {
    server_->Unregister(this);
    --server_->connections;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // `refuse`: answer 503 and close instead of reading requests.
  void Start(bool refuse) {
    server_->Register(this, weak_from_this());
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), refuse] {
      if (refuse) {
        self->Write(HttpResponse::Error(503, "unavailable", "too many connections"), After::kLinger);
      } else {
        self->ReadRequest();
      }
    });
  }

  // Any thread. Closes the connection now if no request is in hand, else
  // once the answer to the request in hand is written.
  void CloseWhenIdle() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (self->phase_ == Phase::kIdle || self->phase_ == Phase::kReading ||
          self->phase_ == Phase::kStreaming) {
        self->Close();
      }
    });
  }

  // Any thread: the answer to the request in hand.
  void Deliver(HttpResponse res) {
    if (closed_.load()) return;  // a stale false only costs a post that is dropped below
    asio::post(stream_.get_executor(), [self = shared_from_this(), res = std::move(res)]() mutable {
      if (self->phase_ != Phase::kHandling) return;
      self->Write(std::move(res), After::kKeepAlive);
    });
  }

 private:
  enum class Phase { kIdle, kReading, kHandling, kWriting, kStreaming, kLingering, kClosed };
  enum class After { kKeepAlive, kClose, kLinger };

  void ReadRequest() {
    if (closing_ || server_->shutting_down) return Close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(kMaxHeaderBytes);
    // A new connection gets header_timeout from the start; a kept-alive one
    // waits up to idle_timeout for the first byte, then header_timeout.
    if (first_ || buffer_.size() > 0) return ReadHeader();
    phase_ = Phase::kIdle;
    stream_.expires_after(server_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              if (self->phase_ == Phase::kClosed) return;
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    phase_ = Phase::kReading;
    stream_.expires_after(server_->options.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, std::size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(error_code ec) {
    if (phase_ == Phase::kClosed) return;
    first_ = false;
    if (ec) return OnReadError(ec);
    if (!parser_->is_done() && beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      stream_.expires_after(server_->options.write_timeout);
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](error_code wec, std::size_t) {
                          if (self->phase_ == Phase::kClosed) return;
                          if (wec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRequest();
    stream_.expires_after(server_->options.body_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (self->phase_ == Phase::kClosed) return;
      if (ec) return self->OnReadError(ec);
      self->OnRequest();
    });
  }

  void OnReadError(error_code ec) {
    static const auto& kHttpErrors = error_code(http::error::bad_method).category();
    if (ec == http::error::body_limit) {
      return Write(HttpResponse::Error(413, "too_large",
                                       "request body is larger than " +
                                           std::to_string(server_->options.max_body_bytes) + " bytes"),
                   After::kLinger);
    }
    if (ec == http::error::header_limit) {
      return Write(HttpResponse::Error(431, "too_large",
                                       "request header is larger than " +
                                           std::to_string(kMaxHeaderBytes) + " bytes"),
                   After::kLinger);
    }
    if (ec.category() == kHttpErrors && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      return Write(HttpResponse::Error(400, "malformed", "malformed HTTP request: " + ec.message()),
                   After::kLinger);
    }
    // Timeout, end of stream, reset: there is nobody to answer.
    Close();
  }

  void OnRequest() {
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();

    std::string_view target = msg.target();
    if (!target.empty() && target.front() != '/') {
      // The absolute form ("http://host/path") must be accepted by servers.
      std::size_t scheme = target.find("://");
      if (scheme != std::string_view::npos) {
        std::size_t slash = target.find('/', scheme + 3);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      }
    }
    if (target.empty() || target.front() != '/') {
      return Write(HttpResponse::Error(400, "malformed", "request target must be a path"), After::kClose);
    }
    phase_ = Phase::kHandling;
    stream_.expires_never();  // handlers keep their own deadlines (long-polls)
    if (closing_ || server_->shutting_down) {
      return Write(HttpResponse::Error(503, "unavailable", "server is shutting down"), After::kClose);
    }

    HttpRequest req;
    req.method = msg.method();
    req.version = msg.version();
    req.target = std::string(target);
    std::size_t q = target.find('?');
    req.path = PercentDecode(target.substr(0, q), false);
    if (q != std::string_view::npos) ParseQuery(target.substr(q + 1), &req.query);
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.content_type = std::string(msg[http::field::content_type]);
    req.body = std::move(msg.body());
    req.remote = remote_;
    parser_.reset();
    Dispatch(std::move(req));
  }

  // Hands the request to the router. The Reply guarantees one answer even if
  // the handler throws or drops its Responder.
  void Dispatch(HttpRequest&& req);

  void Write(HttpResponse res, After after) {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kWriting;
    gone_.reset();  // answered: the handler no longer needs to hear of a close
    if (watching_) {
      // Cancels only the watch read; the write below starts after it.
      error_code ignored;
      stream_.socket().cancel(ignored);
    }
    if (res.status < 200 || res.status > 599) {
      res = HttpResponse::Error(500, "internal",
                                "handler answered with invalid status " + std::to_string(res.status));
    }
    if (res.stream) return StartStream(std::move(res));
    const bool keep = after == After::kKeepAlive && keep_alive_ && !closing_ && !server_->shutting_down;
    response_ = http::response<http::string_body>();
    response_.version(version_);
    response_.result(static_cast<unsigned>(res.status));
    response_.set(http::field::server, server_->options.server_name);
    if (res.status == 204 || res.status == 304) res.body.clear();
    if (!res.body.empty() && !res.content_type.empty()) {
      response_.set(http::field::content_type, res.content_type);
    }
    for (const auto& [name, value] : res.headers) {
      if (!SafeHeader(name, value)) continue;
      const http::field f = http::string_to_field(name);
      if (f == http::field::content_length || f == http::field::transfer_encoding ||
          f == http::field::connection) {
        continue;
      }
      if (f == http::field::server || f == http::field::content_type) {
        response_.set(f, value);
      } else {
        response_.insert(name, value);
      }
    }
    response_.keep_alive(keep);
    response_.body() = std::move(res.body);
    response_.prepare_payload();
    stream_.expires_after(server_->options.write_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), after, keep](error_code ec, std::size_t) {
                        if (self->phase_ == Phase::kClosed) return;
                        if (ec) return self->Close();
                        if (after == After::kLinger) return self->Linger();
                        if (!keep) return self->Close();
                        // The watch read still has to finish; it reads on.
                        if (self->watching_) {
                          self->resume_after_watch_ = true;
                          return;
                        }
                        self->ReadRequest();
                      });
  }

  // A streamed answer: the head, then whatever the producer writes, on the
  // socket directly (the stream's timer would time the idle reads out); a
  // read runs all along to notice the client leaving. Input is discarded.
  void StartStream(HttpResponse res) {
    phase_ = Phase::kStreaming;
    sink_ = std::move(res.stream);
    stream_.expires_never();
    std::string head = "HTTP/1." + std::to_string(version_ == 10 ? 0 : 1) + " " +
                       std::to_string(res.status) + " " +
                       std::string(http::obsolete_reason(static_cast<http::status>(res.status))) +
                       "\r\nServer: " + server_->options.server_name;
    if (!res.content_type.empty()) head += "\r\nContent-Type: " + res.content_type;
    for (const auto& [name, value] : res.headers) {
      if (!SafeHeader(name, value)) continue;
      const http::field f = http::string_to_field(name);
      if (f == http::field::content_length || f == http::field::transfer_encoding ||
          f == http::field::connection || f == http::field::content_type ||
          f == http::field::server) {
        continue;
      }
      head += "\r\n" + name + ": " + value;
    }
    head += "\r\nConnection: close\r\n\r\n";
    out_ = std::move(head);
    WriteOut();
    // The producer's writes wake Pump (which waits for the head's write).
    sink_->Attach([weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        asio::post(self->stream_.get_executor(), [self] { self->Pump(); });
      }
    });
    if (!watching_) DiscardInput();  // else once the watch read has ended
  }

  void Pump() {
    if (phase_ != Phase::kStreaming || writing_) return;
    bool ended = false;
    out_ = sink_->Take(&ended);
    if (out_.empty()) {
      if (ended) Close();
      return;
    }
    WriteOut();
  }

  // Writes out_, then pumps on.
  void WriteOut() {
    writing_ = true;
    asio::async_write(stream_.socket(), asio::buffer(out_),
                      [self = shared_from_this()](error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (self->phase_ == Phase::kClosed) return;
                        if (ec) return self->Close();
                        self->Pump();
                      });
  }

  void DiscardInput() {
    buffer_.consume(buffer_.size());
    stream_.socket().async_read_some(buffer_.prepare(kReadChunk),
                                     [self = shared_from_this()](error_code ec, std::size_t) {
                                       if (self->phase_ == Phase::kClosed) return;
                                       if (ec) return self->Close();
                                       self->DiscardInput();
                                     });
  }

  // While a handler holds the request, a read on the socket notices a client
  // that goes away (a long-poll whose worker stopped) and tells the handler.
  // Bytes that arrive instead (a pipelined request) stay in buffer_ for the
  // next request; the watch then ends.
  void WatchForClose() {
    if (phase_ != Phase::kHandling || !gone_ || watching_) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              self->watching_ = false;
                              if (self->phase_ == Phase::kClosed) return;
                              if (ec && ec != asio::error::operation_aborted) {
                                if (auto gone = std::move(self->gone_)) gone->Fire();
                                if (self->phase_ == Phase::kHandling) return self->Close();
                              }
                              self->buffer_.commit(n);
                              if (self->phase_ == Phase::kStreaming) return self->DiscardInput();
                              if (self->resume_after_watch_) {
                                self->resume_after_watch_ = false;
                                self->ReadRequest();
                              }
                            });
  }

  // Stops sending and drains input until the client closes or the linger
  // time passes; closing with unread input would reset the connection and
  // could destroy the answer just sent.
  void Linger() {
    phase_ = Phase::kLingering;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.consume(buffer_.size());
    stream_.expires_after(kLingerTimeout);
    DrainSome();
  }

  void DrainSome() {
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](error_code ec, std::size_t) {
                              if (self->phase_ == Phase::kClosed) return;
                              if (ec) return self->Close();
                              self->DrainSome();
                            });
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    closed_.store(true);
    if (sink_) sink_->Closed();
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();  // cancels the pending operation and the timer
  }

  beast::tcp_stream stream_;
  std::shared_ptr<HttpServer::Impl> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;  // the one being written
  std::string remote_;
  Phase phase_ = Phase::kReading;
  unsigned version_ = 11;   // of the request in hand; 11 before any
  bool keep_alive_ = false;
  bool first_ = true;       // no request header read yet
  bool closing_ = false;    // Shutdown asked to close once idle
  bool watching_ = false;   // a watch read is pending (kHandling, kWriting)
  bool resume_after_watch_ = false;  // the answer is written; read on when the watch ends
  std::shared_ptr<ClientGone> gone_;  // of the request in hand, until answered
  std::shared_ptr<HttpStream> sink_;  // kStreaming: the answer's producer
  std::string out_;                   // kStreaming: the bytes being written
  bool writing_ = false;              // kStreaming: a write is pending
  // Mirrors phase_ == kClosed for Deliver(), which runs on any thread.
  std::atomic<bool> closed_{false};
};

// The state behind one Responder: answers once, and answers 500 if it dies
// unanswered. It holds the session, so the session lives until answered, and
// counts as work on the io_context, so run() does not return while a handler
// still holds a request (after Shutdown nothing else may be pending).
class Reply {
 public:
  Reply(std::shared_ptr<Session> session, asio::io_context& ioc)
      : session_(std::move(session)), work_(asio::make_work_guard(ioc)) {}
  ~Reply() {
    if (!answered_.exchange(true)) {
      session_->Deliver(HttpResponse::Error(500, "internal", "the handler dropped the request unanswered"));
    }
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  void Answer(HttpResponse res) {
    // exchange orders concurrent callers: exactly one sees false, and only
    // that one touches work_ (the posted write is work of its own).
    if (answered_.exchange(true)) return;
    session_->Deliver(std::move(res));
    work_.reset();
  }

 private:
  std::shared_ptr<Session> session_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::atomic<bool> answered_{false};
};

void Session::Dispatch(HttpRequest&& req) {
  auto reply = std::make_shared<Reply>(shared_from_this(), server_->ioc);
  gone_ = std::make_shared<ClientGone>();
  gone_->SetWatch([weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      asio::post(self->stream_.get_executor(), [self] { self->WatchForClose(); });
    }
  });
  req.gone = gone_;
  // A synchronous answer is posted, so Write never runs inside the handler.
  try {
    server_->router.Dispatch(std::move(req), [reply](HttpResponse res) { reply->Answer(std::move(res)); });
  } catch (const std::exception& e) {
    reply->Answer(HttpResponse::Error(500, "internal", std::string("handler failed: ") + e.what()));
  } catch (...) {
    reply->Answer(HttpResponse::Error(500, "internal", "handler failed"));
  }
}

bool IsResourceShortage(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory || ec == boost::system::errc::too_many_files_open_in_system;
}

}  // namespace

void HttpServer::Impl::Register(Session* s, std::weak_ptr<Session> w) {
  std::lock_guard<std::mutex> lock(mu);
  sessions[s] = std::move(w);
}

void HttpServer::Impl::Unregister(Session* s) {
  std::lock_guard<std::mutex> lock(mu);
  sessions.erase(s);
}

void HttpServer::Impl::DoAccept() {
  if (!acceptor.is_open()) return;
  acceptor.async_accept(asio::make_strand(ioc),
                        [self = shared_from_this()](error_code ec, tcp::socket socket) {
                          self->OnAccept(ec, std::move(socket));
                        });
}

void HttpServer::Impl::OnAccept(error_code ec, tcp::socket socket) {
  if (!acceptor.is_open() || ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors or memory: retrying at once would spin.
    if (!IsResourceShortage(ec)) return DoAccept();
    accept_retry.expires_after(kAcceptRetryDelay);
    accept_retry.async_wait([self = shared_from_this()](error_code wec) {
      if (!wec) self->DoAccept();
    });
    return;
  }
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  // Sessions are created only here, on this strand, so the count cannot
  // grow between the check and the construction.
  const bool refuse = connections.load() >= options.max_connections;
  std::make_shared<Session>(std::move(socket), shared_from_this())->Start(refuse);
  DoAccept();
}

void HttpServer::Impl::CloseAcceptor() {
  error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
}

HttpServer::HttpServer(asio::io_context& ioc, const Router& router, HttpServerOptions options)
    : impl_(std::make_shared<Impl>(ioc, router, std::move(options))) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen(const std::string& host_port) {
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("listen address must be host:port, got \"" + host_port + "\"");
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = host_port.substr(colon + 1);
  unsigned port = 0;
  auto [end, perr] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || perr != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return InvalidArgument("bad port in listen address \"" + host_port + "\"");
  }
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) {
    tcp::resolver resolver(impl_->ioc);
    auto results = resolver.resolve(host, port_text, ec);
    if (ec || results.empty()) {
      return InvalidArgument("cannot resolve host in listen address \"" + host_port + "\"");
    }
    addr = results.begin()->endpoint().address();
  }
  const tcp::endpoint ep(addr, static_cast<std::uint16_t>(port));
  tcp::acceptor& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  tcp::endpoint bound;
  if (!ec) bound = a.local_endpoint(ec);
  if (ec) {
    error_code ignored;
    a.close(ignored);
    return Unavailable("cannot listen on " + host_port + ": " + ec.message());
  }
  impl_->port = bound.port();
  const std::string h = bound.address().to_string();
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
  asio::dispatch(impl_->acceptor.get_executor(), [impl = impl_] { impl->CloseAcceptor(); });
}

void HttpServer::Shutdown() {
  impl_->shutting_down = true;
  StopAccepting();
  // Collected under the lock, closed outside it: the last reference to a
  // session may drop here, and its destructor takes the lock.
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    live.reserve(impl_->sessions.size());
    for (auto& [ptr, weak] : impl_->sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->CloseWhenIdle();
}

}  // namespace dray
