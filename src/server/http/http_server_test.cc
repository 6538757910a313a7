#include "server/http/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "support/status_assert.h"
#include "support/wait.h"

namespace dray {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using http::verb;
using Response = http::response<http::string_body>;
using namespace std::chrono_literals;
using dray::testing::WaitFor;

// A blocking test client over one connection. Every read has a deadline (a
// beast tcp_stream timeout run on the client's own io_context), so a test
// that fails does so quickly instead of hanging, and no test sleeps.
class Client {
 public:
  explicit Client(std::uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  void SendRaw(std::string_view bytes) {
    asio::write(stream_.socket(), asio::buffer(bytes.data(), bytes.size()));
  }

  void Send(verb method, const std::string& target, std::string body = {}, bool close = false) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty()) req.set(http::field::content_type, "text/plain");
    req.body() = std::move(body);
    req.prepare_payload();
    if (close) req.keep_alive(false);
    http::write(stream_, req);
  }

  // One response, or nullopt if none came within `timeout` (see error()).
  std::optional<Response> Read(std::chrono::milliseconds timeout = 5s) {
    Response res;
    error_ = asio::error::would_block;
    stream_.expires_after(timeout);
    http::async_read(stream_, buffer_, res, [this](beast::error_code ec, std::size_t) { error_ = ec; });
    Run();
    if (error_) return std::nullopt;
    return res;
  }

  // True if the server closes the connection within `timeout`; whatever it
  // still sends is discarded.
  bool WaitForClose(std::chrono::milliseconds timeout = 60s) {
    stream_.expires_after(timeout);
    char scratch[512];
    std::function<void(beast::error_code, std::size_t)> on_read = [&](beast::error_code ec, std::size_t) {
      if (ec) {
        error_ = ec;
        return;
      }
      stream_.async_read_some(asio::buffer(scratch), on_read);
    };
    stream_.async_read_some(asio::buffer(scratch), on_read);
    Run();
    return error_ == asio::error::eof || error_ == asio::error::connection_reset;
  }

  beast::error_code error() const { return error_; }

 private:
  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  beast::error_code error_;
};

std::string ErrorCode(const Response& r) {
  return std::string(boost::json::parse(r.body()).at("error").at("code").as_string());
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options = {}) {
    router_.Add(verb::get, "/hello/{name}", [](HttpRequest&& req, Responder respond) {
      respond(HttpResponse::Json(200, "{\"hi\":\"" + req.params.at("name") + "\",\"q\":\"" +
                                          req.query["q"] + "\",\"path\":\"" + req.path + "\"}"));
    });
    router_.Add(verb::post, "/echo", [](HttpRequest&& req, Responder respond) {
      HttpResponse r;
      r.content_type = req.content_type;
      r.body = std::move(req.body);
      r.headers.emplace_back("X-Remote", req.remote);
      respond(std::move(r));
    });
    router_.Add(verb::get, "/busy", [](HttpRequest&&, Responder respond) {
      HttpResponse r = HttpResponse::Error(429, "resource_exhausted", "slow down");
      r.headers.emplace_back("Retry-After", "3");
      r.headers.emplace_back("X-Bad", "a\r\nInjected: yes");
      respond(std::move(r));
    });
    router_.Add(verb::get, "/later", [this](HttpRequest&&, Responder respond) {
      std::lock_guard<std::mutex> lock(mu_);
      held_.push_back(std::move(respond));
      cv_.notify_all();
    });
    router_.Add(verb::get, "/drop", [](HttpRequest&&, Responder) {});
    router_.Add(verb::get, "/throw", [](HttpRequest&&, Responder) { throw std::runtime_error("boom"); });
    server_ = std::make_unique<HttpServer>(ioc_, router_, options);
    ASSERT_OK(server_->Listen("127.0.0.1:0"));
    ASSERT_NE(server_->port(), 0);
    server_->Start();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& r : held_) r(HttpResponse::Json(200, "{}"));
      held_.clear();
    }
    if (!JoinIoThreads(10s)) {
      ADD_FAILURE() << "the io_context did not run out of work after Shutdown";
      ioc_.stop();
      JoinIoThreads(10s);
    }
  }

  // True once the threads running the io_context have returned.
  bool JoinIoThreads(std::chrono::milliseconds timeout) {
    if (threads_.empty()) return true;
    auto done = std::async(std::launch::async, [this] {
      for (auto& t : threads_) t.join();
    });
    if (done.wait_for(timeout) != std::future_status::ready) {
      ioc_.stop();
      done.wait();
      threads_.clear();
      return false;
    }
    threads_.clear();
    return true;
  }

  // The Responder of the next request that reached /later.
  Responder TakeHeld() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, 5s, [&] { return !held_.empty(); })) {
      ADD_FAILURE() << "no request reached /later";
      return [](HttpResponse) {};
    }
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

TEST_F(HttpServerTest, RoutesAndDecodesParamsAndQuery) {
  Start();
  Client c(server_->port());
  c.Send(verb::get, "/hello/w%C3%B6rld?q=a%20b%26c+d");
  auto r = c.Read();
  ASSERT_TRUE(r) << c.error().message();
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), R"({"hi":"wörld","q":"a b&c d","path":"/hello/wörld"})");
  EXPECT_EQ((*r)[http::field::server], "dray");
  EXPECT_EQ((*r)[http::field::content_type], "application/json");
}

TEST_F(HttpServerTest, KeepsTheConnectionAliveAcrossRequests) {
  Start();
  Client c(server_->port());
  for (int i = 0; i < 5; ++i) {
    std::string body = "body " + std::to_string(i);
    c.Send(verb::post, "/echo", body);
    auto r = c.Read();
    ASSERT_TRUE(r) << "request " << i << ": " << c.error().message();
    EXPECT_EQ(r->body(), body);
    EXPECT_EQ((*r)[http::field::content_type], "text/plain");
    EXPECT_TRUE(r->keep_alive());
    EXPECT_EQ((*r)["X-Remote"].substr(0, 10), "127.0.0.1:");
  }
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  Start();
  Client c(server_->port());
  c.Send(verb::get, "/nope");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 404);
  EXPECT_EQ(ErrorCode(*r), "not_found");
  c.Send(verb::get, "/echo");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 405);
  EXPECT_EQ((*r)[http::field::allow], "POST");
  EXPECT_TRUE(r->keep_alive());
}

TEST_F(HttpServerTest, HandlerHeadersAreSentButNotInjected) {
  Start();
  Client c(server_->port());
  c.Send(verb::get, "/busy");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 429);
  EXPECT_EQ((*r)[http::field::retry_after], "3");
  EXPECT_EQ(r->count("X-Bad"), 0u);
  EXPECT_EQ(r->count("Injected"), 0u);
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  Start();
  Client c(server_->port());
  c.Send(verb::get, "/hello/x", {}, /*close=*/true);
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveCloses) {
  Start();
  Client c(server_->port());
  c.SendRaw("GET /hello/x HTTP/1.0\r\n\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->version(), 10u);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(HttpServerTest, BodyOverTheLimitGets413AndClose) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  Start(o);
  // Declared too large: refused from the header, the body is drained.
  {
    Client c(server_->port());
    c.Send(verb::post, "/echo", std::string(1 << 20, 'x'));
    auto r = c.Read();
    ASSERT_TRUE(r) << c.error().message();
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_EQ(ErrorCode(*r), "too_large");
    EXPECT_FALSE(r->keep_alive());
    EXPECT_TRUE(c.WaitForClose());
  }
  // Chunked: refused once the chunks pass the limit.
  {
    Client c(server_->port());
    std::string chunk(800, 'y');
    c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              "320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r) << c.error().message();
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_TRUE(c.WaitForClose());
  }
  // At the limit: fine.
  Client c(server_->port());
  c.Send(verb::post, "/echo", std::string(1024, 'z'));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body().size(), 1024u);
}

TEST_F(HttpServerTest, ExpectContinueGets100ThenTheAnswer) {
  Start();
  Client c(server_->port());
  c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  auto interim = c.Read();
  ASSERT_TRUE(interim) << c.error().message();
  EXPECT_EQ(interim->result_int(), 100);
  c.SendRaw("hello");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), "hello");
}

TEST_F(HttpServerTest, MalformedRequestGets400AndClose) {
  Start();
  Client c(server_->port());
  c.SendRaw("THIS IS NOT HTTP\r\n\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r) << c.error().message();
  EXPECT_EQ(r->result_int(), 400);
  EXPECT_EQ(ErrorCode(*r), "malformed");
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(HttpServerTest, BadContentLengthGets400) {
  Start();
  Client c(server_->port());
  c.SendRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r) << c.error().message();
  EXPECT_EQ(r->result_int(), 400);
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(HttpServerTest, DeferredAnswerFromAnotherThreadIsDelivered) {
  Start();
  Client c(server_->port());
  c.Send(verb::get, "/later");
  Responder respond = TakeHeld();
  std::thread([respond] { respond(HttpResponse::Json(202, R"({"late":true})")); }).join();
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 202);
  EXPECT_EQ(r->body(), R"({"late":true})");
  // The connection is still usable.
  c.Send(verb::get, "/hello/again");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(HttpServerTest, HeldRequestIsNotTimedOutByTheServer) {
  HttpServerOptions o;
  o.header_timeout = 100ms;
  o.idle_timeout = 100ms;
  Start(o);
  Client c(server_->port());
  c.Send(verb::get, "/later");
  Responder respond = TakeHeld();
  // Well past both timeouts the connection is still open, waiting.
  EXPECT_FALSE(c.Read(500ms));
  EXPECT_EQ(c.error(), beast::error::timeout);
  EXPECT_EQ(server_->connections(), 1u);
  // The client's timeout closed its socket; answering is still harmless.
  respond(HttpResponse::Json(200, "{}"));
}

TEST_F(HttpServerTest, AnsweringAfterTheClientLeftIsHarmless) {
  Start();
  Responder respond;
  {
    Client c(server_->port());
    c.Send(verb::get, "/later");
    respond = TakeHeld();
  }  // the client disconnects
  std::thread([respond] {
    respond(HttpResponse::Json(200, "{}"));
    respond(HttpResponse::Json(200, "{}"));  // a second call is ignored
  }).join();
  respond = nullptr;
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 0; }));
  Client again(server_->port());
  again.Send(verb::get, "/hello/x");
  auto r = again.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(HttpServerTest, DroppedOrThrowingHandlerAnswers500) {
  Start();
  Client c(server_->port());
  c.Send(verb::get, "/drop");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  EXPECT_EQ(ErrorCode(*r), "internal");
  c.Send(verb::get, "/throw");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  EXPECT_NE(r->body().find("boom"), std::string::npos);
}

TEST_F(HttpServerTest, IdleKeptAliveConnectionIsClosed) {
  HttpServerOptions o;
  o.idle_timeout = 200ms;
  Start(o);
  Client c(server_->port());
  c.Send(verb::get, "/hello/x");
  ASSERT_TRUE(c.Read());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.WaitForClose()) << c.error().message();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 0; }));
}

TEST_F(HttpServerTest, IncompleteHeaderTimesOut) {
  HttpServerOptions o;
  o.header_timeout = 200ms;
  Start(o);
  Client c(server_->port());
  c.SendRaw("GET /hello/x HTTP/1.1\r\nHost: x\r\n");
  EXPECT_TRUE(c.WaitForClose()) << c.error().message();
  Client silent(server_->port());  // never sends a byte
  EXPECT_TRUE(silent.WaitForClose()) << silent.error().message();
}

TEST_F(HttpServerTest, ConnectionsPastTheLimitGet503) {
  HttpServerOptions o;
  o.max_connections = 2;
  Start(o);
  auto a = std::make_unique<Client>(server_->port());
  Client b(server_->port());
  a->Send(verb::get, "/hello/a");
  b.Send(verb::get, "/hello/b");
  ASSERT_TRUE(a->Read());
  ASSERT_TRUE(b.Read());
  {
    Client c(server_->port());
    auto r = c.Read();
    ASSERT_TRUE(r) << c.error().message();
    EXPECT_EQ(r->result_int(), 503);
    EXPECT_EQ(ErrorCode(*r), "unavailable");
    EXPECT_FALSE(r->keep_alive());
    EXPECT_TRUE(c.WaitForClose());
  }
  a.reset();
  ASSERT_TRUE(WaitFor([&] { return server_->connections() < 2; }));
  Client d(server_->port());
  d.Send(verb::get, "/hello/d");
  auto r = d.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(HttpServerTest, ShutdownDeliversAHeldAnswerThenRunReturns) {
  Start();
  Client idle(server_->port());
  idle.Send(verb::get, "/hello/idle");
  ASSERT_TRUE(idle.Read());
  Client busy(server_->port());
  busy.Send(verb::get, "/later");
  Responder respond = TakeHeld();

  server_->Shutdown();
  EXPECT_TRUE(idle.WaitForClose());  // idle keep-alive connections close at once

  std::thread([respond] { respond(HttpResponse::Json(200, R"({"last":true})")); }).join();
  respond = nullptr;
  auto r = busy.Read();
  ASSERT_TRUE(r) << busy.error().message();
  EXPECT_EQ(r->body(), R"({"last":true})");
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(busy.WaitForClose());
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 0; })) << server_->connections();
  EXPECT_TRUE(JoinIoThreads(5s)) << "ioc.run() did not return after Shutdown";
  EXPECT_EQ(server_->connections(), 0u);
}

TEST(HttpServerListenTest, RejectsBadAddresses) {
  asio::io_context ioc;
  Router router;
  HttpServer server(ioc, router, {});
  EXPECT_EQ(server.Listen("127.0.0.1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server.Listen("127.0.0.1:http").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server.Listen("127.0.0.1:70000").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(server.Listen("[::1]:0").ok() || server.Listen("127.0.0.1:0").ok());
  EXPECT_NE(server.port(), 0);
  EXPECT_NE(server.address().find(std::to_string(server.port())), std::string::npos);
}

}  // namespace
}  // namespace dray
