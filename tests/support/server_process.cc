#include "support/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "support/test_postgres.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace dray::testing {

boost::json::value HttpResult::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  return ec ? boost::json::value(nullptr) : v;
}

struct HttpConn::Impl {
  Impl(int p, std::string h) : port(p), host(std::move(h)), stream(ioc) {}
  int port;
  std::string host;
  asio::io_context ioc;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool open = false;
};

HttpConn::HttpConn(int port, std::string host) : impl_(std::make_unique<Impl>(port, std::move(host))) {}
HttpConn::~HttpConn() = default;
bool HttpConn::connected() const { return impl_->open; }

HttpResult HttpConn::Call(const std::string& method, const std::string& target,
                          const std::string& body, std::chrono::milliseconds timeout) {
  HttpResult result;
  Impl& c = *impl_;
  beast::error_code ec;
  if (!c.open) {
    // Async, like the calls below, so that the deadline holds even when no
    // answer comes at all (a partitioned network drops the SYN).
    c.stream.expires_after(timeout);
    c.stream.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address(c.host),
                                                   static_cast<unsigned short>(c.port)),
                           [&](beast::error_code e) { ec = e; });
    c.ioc.restart();
    c.ioc.run();
    if (ec) {
      c.stream.close();
      return result;
    }
    c.open = true;
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, c.host);
  req.keep_alive(true);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  // Sync calls on a tcp_stream ignore its timer: run them as async ops on the
  // private io_context so that the deadline applies.
  c.stream.expires_after(timeout);
  http::response_parser<http::string_body> parser;
  parser.body_limit(256u << 20);
  http::async_write(c.stream, req, [&](beast::error_code e, std::size_t) {
    if (e) {
      ec = e;
      return;
    }
    http::async_read(c.stream, c.buffer, parser, [&](beast::error_code e2, std::size_t) { ec = e2; });
  });
  c.ioc.restart();
  c.ioc.run();
  if (ec) {
    c.stream.close();
    c.open = false;
    c.buffer.clear();
    return result;
  }
  auto& res = parser.get();
  result.status = static_cast<int>(res.result_int());
  result.body = res.body();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    result.headers[name] = std::string(f.value());
  }
  if (!res.keep_alive()) {
    c.stream.close();
    c.open = false;
  }
  return result;
}

HttpResult Http(int port, const std::string& method, const std::string& target,
                const std::string& body) {
  HttpConn conn(port);
  return conn.Call(method, target, body);
}

bool UsesPostgres() {
  const char* store = std::getenv("DRAY_TEST_STORE");
  return store && (std::string_view(store) == "postgres" ||
                   std::string_view(store).rfind("postgres:", 0) == 0);
}

std::string BinaryPath() {
  if (const char* env = std::getenv("DRAY_BINARY")) return env;
  return DRAY_BINARY;
}

ServerProcess::ServerProcess(std::vector<std::string> args) : args_(std::move(args)) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "dray-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  data_dir_ = tmpl;
  if (UsesPostgres()) {
    std::string error;
    if (testing_pg::CreateDatabase(data_dir_, &error).empty()) {
      throw std::runtime_error("DRAY_TEST_STORE=postgres: no test database: " + error);
    }
    store_ = testing_pg::DatabaseUrl(data_dir_);
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill();
  if (!store_.empty()) testing_pg::DropDatabase(data_dir_);
  std::error_code ec;
  std::filesystem::remove_all(data_dir_, ec);
}

void ServerProcess::Start() {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  // Restarts reuse the port so that clients can reconnect to the same place.
  std::string listen = host_ + ":" + std::to_string(port_);
  std::vector<std::string> argv = {BinaryPath(), "server", "--listen", listen, "--data", data_dir_};
  if (!store_.empty()) {
    argv.push_back("--store");
    argv.push_back(store_);
  }
  argv.insert(argv.end(), args_.begin(), args_.end());
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    for (std::string& e : env_) putenv(e.data());
    int devnull = open("/dev/null", O_WRONLY);
    if (!std::getenv("DRAY_TEST_SERVER_LOGS")) dup2(devnull, 2);
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(out[1]);
  // The server prints "listening on HOST:PORT" once it accepts connections.
  // Within a deadline: a server that hangs while it starts (recovery, say)
  // fails the test with what it printed instead of hanging it.
  constexpr int kStartDeadlineMs = 120'000;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kStartDeadlineMs);
  std::string line, printed;
  char ch;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    pollfd pfd{out[0], POLLIN, 0};
    if (left <= 0 || poll(&pfd, 1, static_cast<int>(left)) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      close(out[0]);
      throw std::runtime_error("dray server printed no 'listening on' line within " +
                               std::to_string(kStartDeadlineMs / 1000) + " s (output: '" +
                               printed + line + "')");
    }
    if (read(out[0], &ch, 1) != 1) break;
    if (ch == '\n') {
      if (line.rfind("listening on ", 0) == 0) break;
      printed += line + "\n";
      line.clear();
    } else {
      line.push_back(ch);
    }
  }
  // Keep draining stdout in the background so the child never blocks on it.
  std::thread([fd = out[0]] {
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
  }).detach();
  auto colon = line.rfind(':');
  if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos) {
    throw std::runtime_error("dray server did not start (output: '" + line + "')");
  }
  port_ = std::stoi(line.substr(colon + 1));
}

int ServerProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool ServerProcess::Exited() {
  if (pid_ <= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
  pid_ = -1;
  return true;
}

std::pair<int, std::string> RunDray(const std::string& args) {
  std::string out;
  FILE* p = popen((BinaryPath() + " " + args + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace dray::testing
