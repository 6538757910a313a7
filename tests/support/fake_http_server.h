// A scripted HTTP/1.1 server for client and worker tests: Boost.Beast sync
// I/O on 127.0.0.1:0, one thread per connection, every request recorded and
// answered by a handler the test supplies. Header-only; part of the test
// support library (tests/support).
//
// Threading: the handler runs on the connection's thread, so several at once
// when the client uses several connections; it must be thread-safe and must
// not block past the server's destruction (the destructor cuts connections
// but cannot interrupt a handler).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace dray::testing {

struct FakeRequest {
  std::string method;
  std::string target;  // as sent: path?query
  std::string path;
  std::map<std::string, std::string> query;  // values as sent (not decoded)
  std::string body;
  int connection = 0;  // 1, 2, ...: which connection carried it

  boost::json::value json() const {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    return ec ? boost::json::value(nullptr) : v;
  }
};

struct FakeResponse {
  enum class Action {
    kAnswer,            // answer and keep the connection open
    kAnswerThenClose,   // answer (keep-alive, as far as the client knows), then close
    kCloseWithoutAnswer,  // the request was read; close without a byte of answer
  };
  int status = 200;
  std::string body = "{}";
  std::vector<std::pair<std::string, std::string>> headers;
  Action action = Action::kAnswer;
};

inline FakeResponse Json(int status, std::string body) {
  FakeResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

inline FakeResponse ErrorReply(int status, const std::string& code, const std::string& message) {
  return Json(status, boost::json::serialize(boost::json::object{
                          {"error", boost::json::object{{"code", code}, {"message", message}}}}));
}

class FakeHttpServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;

  explicit FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
    namespace ip = boost::asio::ip;
    acceptor_.open(ip::tcp::v4());
    acceptor_.set_option(ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind(ip::tcp::endpoint(ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeHttpServer() {
    stopping_ = true;
    {
      // Wake the blocking accept() with a connection of our own.
      boost::asio::io_context ioc;
      boost::asio::ip::tcp::socket s(ioc);
      boost::system::error_code ec;
      s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
      accept_thread_.join();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : conn_threads_) t.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  unsigned short port() const { return port_; }

  std::vector<FakeRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::vector<FakeRequest> requests_to(const std::string& path) const {
    std::vector<FakeRequest> out;
    for (FakeRequest& r : requests()) {
      if (r.path == path) out.push_back(std::move(r));
    }
    return out;
  }
  int connections() const {
    std::lock_guard<std::mutex> lock(mu_);
    return connections_;
  }
  // Connections not yet closed by this server (a closed one has had its FIN
  // sent: shutdown and close happen under mu_ with its removal).
  int open_connections() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(open_fds_.size());
  }

 private:
  void AcceptLoop() {
    for (;;) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_) return;
      if (ec) continue;
      std::lock_guard<std::mutex> lock(mu_);
      int id = ++connections_;
      open_fds_.insert(socket.native_handle());
      conn_threads_.emplace_back(
          [this, id, s = std::make_shared<boost::asio::ip::tcp::socket>(std::move(socket))] {
            Serve(*s, id);
          });
    }
  }

  void Serve(boost::asio::ip::tcp::socket& socket, int id) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(socket, buffer, req, ec);
      if (ec) break;
      FakeRequest fr;
      fr.method = std::string(req.method_string());
      fr.target = std::string(req.target());
      fr.body = req.body();
      fr.connection = id;
      std::size_t q = fr.target.find('?');
      fr.path = fr.target.substr(0, q);
      if (q != std::string::npos) {
        std::string rest = fr.target.substr(q + 1);
        std::size_t start = 0;
        while (start <= rest.size()) {
          std::size_t amp = rest.find('&', start);
          std::string kv = rest.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
          std::size_t eq = kv.find('=');
          if (!kv.empty()) fr.query[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
          if (amp == std::string::npos) break;
          start = amp + 1;
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(fr);
      }
      FakeResponse r = handler_(fr);
      if (r.action == FakeResponse::Action::kCloseWithoutAnswer) break;
      http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
      res.set(http::field::content_type, "application/json");
      for (const auto& [k, v] : r.headers) res.set(k, v);
      res.keep_alive(true);
      res.body() = r.body;
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec || r.action == FakeResponse::Action::kAnswerThenClose) break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(socket.native_handle());
    boost::system::error_code ignored;
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  Handler handler_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;

  mutable std::mutex mu_;
  std::vector<FakeRequest> requests_;   // guarded by mu_
  int connections_ = 0;                 // guarded by mu_
  std::set<int> open_fds_;              // guarded by mu_; closed only under mu_
  std::vector<std::thread> conn_threads_;  // guarded by mu_ until the accept loop ends
};

}  // namespace dray::testing
