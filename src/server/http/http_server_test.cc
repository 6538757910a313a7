#include "server/http/http_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <future>
#include <thread>

namespace dray {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::beast::http::verb;

// A raw client: writes bytes, reads until the peer closes or `timeout`.
class RawConn {
 public:
  explicit RawConn(std::uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{5, 0};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void Send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // Reads one response (headers + Content-Length body); "" on EOF.
  std::string ReadResponse() {
    std::string out;
    char c;
    while (out.find("\r\n\r\n") == std::string::npos) {
      if (::recv(socket_.native_handle(), &c, 1, 0) != 1) return out;
      out.push_back(c);
    }
    std::size_t cl = out.find("Content-Length: ");
    if (cl == std::string::npos) cl = out.find("content-length: ");
    std::size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
    std::string body(len, '\0');
    std::size_t got = 0;
    while (got < len) {
      ssize_t n = ::recv(socket_.native_handle(), body.data() + got, len - got, 0);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    return out + body;
  }
  // True if the server closed the connection (EOF) before `timeout`.
  bool ClosedByPeer() {
    char c;
    return ::recv(socket_.native_handle(), &c, 1, 0) == 0;
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
};

std::string Get(const std::string& path, bool close = false) {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n";
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options = {}) {
    router_.Add(verb::get, "/hello/{name}", [](HttpRequest&& req, Responder respond) {
      respond(HttpResponse::Json(200, "{\"hi\":\"" + req.params.at("name") + "\",\"q\":\"" +
                                          req.query["q"] + "\"}"));
    });
    router_.Add(verb::post, "/echo", [](HttpRequest&& req, Responder respond) {
      respond(HttpResponse::Json(200, req.body));
    });
    router_.Add(verb::get, "/later", [this](HttpRequest&&, Responder respond) {
      std::lock_guard<std::mutex> lock(mu_);
      held_.push_back(std::move(respond));
      cv_.notify_all();
    });
    server_ = std::make_unique<HttpServer>(ioc_, router_, options);
    ASSERT_TRUE(server_->Listen("127.0.0.1:0").ok());
    server_->Start();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  void TearDown() override {
    server_->Shutdown();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& r : held_) r(HttpResponse::Json(200, "{}"));
      held_.clear();
    }
    for (auto& t : threads_) t.join();  // returns once the server has no work left
  }
  Responder TakeHeld() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !held_.empty(); });
    Responder r = std::move(held_.front());
    held_.erase(held_.begin());
    return r;
  }

  asio::io_context ioc_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Responder> held_;
};

TEST_F(HttpServerTest, RoutesDecodesAndKeepsConnectionsAlive) {
  Start();
  RawConn c(server_->port());
  for (int i = 0; i < 3; ++i) {
    c.Send(Get("/hello/w%C3%B6rld?q=a%20b%26c"));
    std::string r = c.ReadResponse();
    EXPECT_NE(r.find("200 OK"), std::string::npos) << r;
    EXPECT_NE(r.find(R"({"hi":"wörld","q":"a b&c"})"), std::string::npos) << r;
  }
  c.Send(Get("/nope"));
  EXPECT_NE(c.ReadResponse().find("404"), std::string::npos);
  c.Send(Get("/echo"));
  std::string r = c.ReadResponse();
  EXPECT_NE(r.find("405"), std::string::npos);
  EXPECT_NE(r.find("Allow: POST"), std::string::npos);
  c.Send(Get("/hello/x", true));
  EXPECT_NE(c.ReadResponse().find("200"), std::string::npos);
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_F(HttpServerTest, OversizedBodyGets413AndClose) {
  HttpServerOptions o;
  o.max_body_bytes = 100;
  Start(o);
  RawConn c(server_->port());
  std::string body(200, 'x');
  c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + body);
  std::string r = c.ReadResponse();
  EXPECT_NE(r.find("413"), std::string::npos) << r;
  EXPECT_NE(r.find("too_large"), std::string::npos);
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_F(HttpServerTest, MalformedRequestGets400) {
  Start();
  RawConn c(server_->port());
  c.Send("THIS IS NOT HTTP\r\n\r\n");
  std::string r = c.ReadResponse();
  EXPECT_NE(r.find("400"), std::string::npos) << r;
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_F(HttpServerTest, DeferredAnswerFromAnotherThreadIsDelivered) {
  Start();
  RawConn c(server_->port());
  c.Send(Get("/later"));
  Responder r = TakeHeld();
  std::thread([r] { r(HttpResponse::Json(202, R"({"late":true})")); }).join();
  std::string res = c.ReadResponse();
  EXPECT_NE(res.find("202"), std::string::npos);
  EXPECT_NE(res.find(R"({"late":true})"), std::string::npos);
}

TEST_F(HttpServerTest, AnsweringAfterTheClientLeftIsHarmless) {
  Start();
  Responder r;
  {
    RawConn c(server_->port());
    c.Send(Get("/later"));
    r = TakeHeld();
  }  // the client disconnects
  r(HttpResponse::Json(200, "{}"));
  r(HttpResponse::Json(200, "{}"));  // a second call is ignored
  RawConn again(server_->port());
  again.Send(Get("/hello/x"));
  EXPECT_NE(again.ReadResponse().find("200"), std::string::npos);
}

TEST_F(HttpServerTest, IdleConnectionsAreClosed) {
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(200);
  o.header_timeout = std::chrono::milliseconds(200);
  Start(o);
  RawConn c(server_->port());
  c.Send(Get("/hello/x"));
  EXPECT_NE(c.ReadResponse().find("200"), std::string::npos);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ClosedByPeer());  // blocks until the server closes (or 5 s)
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  RawConn silent(server_->port());  // never sends a header
  EXPECT_TRUE(silent.ClosedByPeer());
}

TEST_F(HttpServerTest, ConnectionsPastTheLimitGet503) {
  HttpServerOptions o;
  o.max_connections = 2;
  Start(o);
  RawConn a(server_->port()), b(server_->port());
  a.Send(Get("/hello/a"));
  b.Send(Get("/hello/b"));
  ASSERT_NE(a.ReadResponse().find("200"), std::string::npos);
  ASSERT_NE(b.ReadResponse().find("200"), std::string::npos);
  RawConn c(server_->port());
  std::string r = c.ReadResponse();
  EXPECT_NE(r.find("503"), std::string::npos) << r;
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_F(HttpServerTest, ShutdownLetsAHeldRequestFinish) {
  Start();
  RawConn c(server_->port());
  c.Send(Get("/later"));
  Responder r = TakeHeld();
  server_->Shutdown();
  r(HttpResponse::Json(200, R"({"last":true})"));
  std::string res = c.ReadResponse();
  EXPECT_NE(res.find(R"({"last":true})"), std::string::npos);
  EXPECT_NE(res.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(c.ClosedByPeer());
}

}  // namespace
}  // namespace dray
