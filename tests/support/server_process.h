// Black-box helpers: a real `dray server` child process on a free port with
// a fresh data directory, and a plain HTTP client to talk to it. Tests that
// want one server per test derive from ServerTest (support/server_test.h).
//
// Threading: one ServerProcess and one HttpConn each belong to one thread at
// a time; separate objects may be used from separate threads.
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dray::testing {

struct HttpResult {
  int status = 0;  // 0: no answer (connection failed)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  boost::json::value json() const;             // parsed body (null if not JSON)
};

// One HTTP/1.1 connection to host:port, kept alive between calls.
class HttpConn {
 public:
  explicit HttpConn(int port, std::string host = "127.0.0.1");
  ~HttpConn();
  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "", std::chrono::milliseconds timeout = std::chrono::seconds(90));
  bool connected() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A fresh connection per call.
HttpResult Http(int port, const std::string& method, const std::string& target,
                const std::string& body = "");

// Whether DRAY_TEST_STORE is postgres (or postgres:CONNINFO_FILE): each
// ServerProcess then stores in PostgreSQL.
bool UsesPostgres();

// Runs `dray server` in a child process.
class ServerProcess {
 public:
  // A new temp data dir; `args` are passed after the defaults. When
  // UsesPostgres(), the server stores in a
  // new database of its own on the test PostgreSQL server
  // (support/test_postgres.h) instead of in the data dir, dropped at
  // destruction; the constructor throws if it cannot be made.
  explicit ServerProcess(std::vector<std::string> args = {});
  ~ServerProcess();  // SIGKILL if still running; removes the data dir (and database)

  // Starts it and waits until it listens. Reuses the data dir and the port
  // (restart).
  void Start();
  // The address to listen on (default 127.0.0.1); takes effect at Start.
  void set_host(std::string host) { host_ = std::move(host); }
  const std::string& host() const { return host_; }
  // SIGTERM and wait; returns the exit status (or -signal).
  int Stop();
  // SIGKILL and reap: a crash.
  void Kill();
  // Whether the process has exited on its own (reaped if so).
  bool Exited();
  // Use `dir` as the data dir from the next Start on (it is still removed,
  // contents first, at destruction).
  void set_data_dir(std::string dir) { data_dir_ = std::move(dir); }
  // Environment for the next Start: KEY=VALUE entries added to the test's own.
  void set_env(std::vector<std::string> env) { env_ = std::move(env); }

  // The --store it is given ("": the default, SQLite in the data dir).
  const std::string& store() const { return store_; }
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> args_;
  std::string host_ = "127.0.0.1";
  std::vector<std::string> env_;
  std::string data_dir_;
  std::string store_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// The dray binary the tests run: $DRAY_BINARY, else the one this build made.
std::string BinaryPath();

// Runs `dray <args>` (a shell command line) to the end; returns its exit
// code (-1 if it did not exit) and what it printed, stderr included.
std::pair<int, std::string> RunDray(const std::string& args);

}  // namespace dray::testing
