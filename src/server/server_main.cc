#include "server/server_main.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "server/api.h"
#include "server/http/http_server.h"
#include "server/http/router.h"
#include "server/task_service.h"
#include "store/sqlite/fault_vfs.h"
#include "store/sqlite/sqlite_store.h"

namespace dray {

namespace {

// Storage faults for the chaos tests (tests/chaos/), read from the
// environment variable DRAY_FAULT_INJECTION, never from a flag: a list of
//   crash_at_sync=N  at the N-th fsync, undo every write not yet synced and
//                    _exit(86) at once: a power cut at that instant;
//   fail_sync_from=N the N-th fsync and every later one fail (EIO).
// Syncs are counted from the store's open. Unset, the store runs on SQLite's
// own VFS and nothing here costs anything.
StatusOr<std::unique_ptr<FaultVfs>> FaultsFromEnvironment() {
  const char* spec = std::getenv("DRAY_FAULT_INJECTION");
  if (!spec || !*spec) return std::unique_ptr<FaultVfs>();
  auto vfs = FaultVfs::Register("dray-fault-injection");
  if (!vfs.ok()) return vfs.status();
  std::string rest = spec;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string item = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const std::uint64_t n = eq == std::string::npos ? 0 : std::strtoull(item.c_str() + eq + 1, nullptr, 10);
    if (n == 0) return InvalidArgument("DRAY_FAULT_INJECTION: '" + item + "' needs =N with N >= 1");
    if (name == "crash_at_sync") {
      (*vfs)->CrashAtSync(n, [] { _exit(86); });
    } else if (name == "fail_sync_from") {
      (*vfs)->FailSyncsFrom(n);
    } else {
      return InvalidArgument("DRAY_FAULT_INJECTION: unknown fault '" + name + "'");
    }
  }
  spdlog::warn("fault injection on (DRAY_FAULT_INJECTION={}): for tests only", spec);
  return vfs;
}

}  // namespace

int RunServer(const ServerConfig& config,
              const std::function<void(const std::string& address)>& on_listening) {
  std::error_code fs_ec;
  std::filesystem::create_directories(config.data_dir, fs_ec);
  SqliteOptions sqlite;
  sqlite.path = (std::filesystem::path(config.data_dir) / "dray.db").string();
  auto faults = FaultsFromEnvironment();  // outlives the store below
  if (!faults.ok()) {
    spdlog::error("{}", faults.status().ToString());
    return 2;
  }
  if (*faults) sqlite.vfs = (*faults)->name();
  auto store = OpenSqliteStore(sqlite);
  if (!store.ok()) {
    spdlog::error("cannot open the store at {}: {}", sqlite.path, store.status().ToString());
    return 1;
  }

  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = config.io_threads > 0 ? config.io_threads : std::max(1, cores - 1);
  boost::asio::io_context ioc(threads);
  TaskService service(ioc, store->get(), SystemClock::Default(), config);
  auto started = std::chrono::steady_clock::now();
  if (Status s = service.Recover(); !s.ok()) {
    spdlog::error("cannot recover from {}: {}", sqlite.path, s.ToString());
    return 1;
  }
  spdlog::info("recovered {} live tasks from {} in {} ms", service.stats().live_tasks, sqlite.path,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count());

  Router router;
  RegisterApi(&router, &service, ApiOptions{config.limits, config.max_wait_ms});
  HttpServerOptions http_options;
  http_options.max_body_bytes = config.limits.max_body_bytes;
  http_options.header_timeout = config.header_timeout;
  http_options.idle_timeout = config.idle_timeout;
  http_options.max_connections = config.max_connections;
  HttpServer http(ioc, router, http_options);
  if (Status s = http.Listen(config.listen); !s.ok()) {
    spdlog::error("cannot listen on {}: {}", config.listen, s.ToString());
    return 1;
  }
  service.Start();
  http.Start();

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping: no new connections, finishing in-flight commits", sig);
    http.StopAccepting();
    service.Stop();  // answers long-polls, drains the commit pipeline
    http.Shutdown();
  });

  spdlog::info("dray serving on {} with data in {}, io threads: {}", http.address(), config.data_dir,
               threads);
  if (config.announce) {
    std::printf("listening on %s\n", http.address().c_str());
    std::fflush(stdout);
  }
  if (on_listening) on_listening(http.address());

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (std::thread& t : pool) t.join();
  service.Stop();
  spdlog::info("dray stopped");
  return 0;
}

}  // namespace dray
