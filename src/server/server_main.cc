#include "server/server_main.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "server/api.h"
#include "server/http/http_server.h"
#include "server/http/router.h"
#include "server/task_service.h"
#include "store/disk_guard.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/fault_vfs.h"
#include "store/sqlite/sqlite_store.h"

namespace dray {

namespace {

// Faults for the chaos tests (tests/chaos/), read from the environment
// variable DRAY_FAULT_INJECTION, never from a flag: a comma-separated list of
//   crash_at_sync=N    at the N-th fsync, undo every write not yet synced and
//                      _exit(86) at once: a power cut at that instant;
//   fail_sync_from=N   the N-th fsync and every later one fail (EIO);
//   clock_offset_file=PATH  the wall clock the server reads is the system's
//                      plus the milliseconds written in PATH (re-read every
//                      20 ms): the test steps the clock without root.
// Syncs are counted from the store's open. Unset, the store runs on SQLite's
// own VFS, the clock is the system's, and nothing here costs anything.
struct Faults {
  std::unique_ptr<FaultVfs> vfs;
  std::string clock_offset_file;
};

StatusOr<Faults> FaultsFromEnvironment() {
  Faults f;
  const char* spec = std::getenv("DRAY_FAULT_INJECTION");
  if (!spec || !*spec) return f;
  std::string rest = spec;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string item = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (name == "clock_offset_file" && !value.empty()) {
      f.clock_offset_file = value;
      continue;
    }
    const std::uint64_t n = std::strtoull(value.c_str(), nullptr, 10);
    if (n == 0) return InvalidArgument("DRAY_FAULT_INJECTION: '" + item + "' needs =N with N >= 1");
    if (!f.vfs) {
      auto vfs = FaultVfs::Register("dray-fault-injection");
      if (!vfs.ok()) return vfs.status();
      f.vfs = std::move(*vfs);
    }
    if (name == "crash_at_sync") {
      f.vfs->CrashAtSync(n, [] { _exit(86); });
    } else if (name == "fail_sync_from") {
      f.vfs->FailSyncsFrom(n);
    } else {
      return InvalidArgument("DRAY_FAULT_INJECTION: unknown fault '" + name + "'");
    }
  }
  spdlog::warn("fault injection on (DRAY_FAULT_INJECTION={}): for tests only", spec);
  return f;
}

// The system clock plus an offset read from a file (clock_offset_file).
SmoothClock::WallMs OffsetWall(std::string path) {
  struct State {
    std::mutex mu;
    std::chrono::steady_clock::time_point read_at{};
    TimeMs offset = 0;
  };
  auto st = std::make_shared<State>();
  return [path = std::move(path), st] {
    std::lock_guard<std::mutex> lock(st->mu);
    const auto now = std::chrono::steady_clock::now();
    if (now - st->read_at >= std::chrono::milliseconds(20)) {
      st->read_at = now;
      if (FILE* f = std::fopen(path.c_str(), "r")) {
        long long v = 0;
        if (std::fscanf(f, "%lld", &v) == 1) st->offset = v;
        std::fclose(f);
      }
    }
    return SystemClock::Default()->NowMs() + st->offset;
  };
}

// The address the last RunServer of this process listened on. Process-wide
// by nature: ExecSelf replaces the process.
std::string& BoundAddress() {
  static std::string address;
  return address;
}

// The arguments with --listen set to `address` (a server asked for port 0
// gets a new port on every bind: the new run keeps the one clients know).
void KeepListenAddress(std::vector<std::string>* args, const std::string& address) {
  if (address.empty()) return;
  for (std::size_t i = 1; i < args->size(); ++i) {
    std::string& a = (*args)[i];
    if (a == "--listen" && i + 1 < args->size()) {
      (*args)[i + 1] = address;
      return;
    }
    if (a.rfind("--listen=", 0) == 0) {
      a = "--listen=" + address;
      return;
    }
  }
  args->push_back("--listen");
  args->push_back(address);
}


}  // namespace

int RunServer(const ServerConfig& config,
              const std::function<void(const std::string& address)>& on_listening) {
  auto faults = FaultsFromEnvironment();  // outlives the store below
  if (!faults.ok()) {
    spdlog::error("{}", faults.status().ToString());
    return 2;
  }
  const bool postgres = !config.store.empty();
  if (postgres && !IsPostgresLocation(config.store)) {
    spdlog::error("--store '{}' is not a PostgreSQL URI (postgresql://user@host/db); "
                  "the SQLite store takes --data",
                  config.store.substr(0, 40));
    return 2;
  }
  std::string where;
  StatusOr<std::unique_ptr<Store>> store = Unavailable("no store");
  if (postgres) {
    where = DescribePostgresLocation(config.store);
    store = OpenPostgresStore(PostgresOptions{config.store});
  } else {
    std::error_code fs_ec;
    std::filesystem::create_directories(config.data_dir, fs_ec);
    SqliteOptions sqlite;
    sqlite.path = (std::filesystem::path(config.data_dir) / "dray.db").string();
    if (faults->vfs) sqlite.vfs = faults->vfs->name();
    where = sqlite.path;
    store = OpenSqliteStore(sqlite);
  }
  if (!store.ok()) {
    spdlog::error("cannot open the store at {}: {}", where, store.status().ToString());
    return 1;
  }

  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = config.io_threads > 0 ? config.io_threads : std::max(1, cores - 1);
  boost::asio::io_context ioc(threads);
  // Deadlines (leases, timeouts, backoffs) must not jump with the system
  // clock: see SmoothClock.
  SmoothClock clock(faults->clock_offset_file.empty() ? SmoothClock::WallMs()
                                                     : OffsetWall(faults->clock_offset_file));
  // The reserve is space beside the SQLite file; PostgreSQL's disk is the
  // database server's to watch.
  std::optional<DiskGuard> disk;
  if (!postgres) disk.emplace(config.data_dir, config.disk_reserve_mb << 20);
  TaskService service(ioc, store->get(), &clock, config, disk ? &*disk : nullptr);
  auto started = std::chrono::steady_clock::now();
  if (Status s = service.Recover(); !s.ok()) {
    spdlog::error("cannot recover from {}: {}", where, s.ToString());
    return 1;
  }
  spdlog::info("recovered {} live tasks from {} in {} ms", service.stats().live_tasks, where,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count());

  Router router;
  RegisterApi(&router, &service, ApiOptions{config.limits, config.max_wait_ms, config.build});
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
  auto stop = [&] {
    http.StopAccepting();
    service.Stop();  // answers long-polls, drains the commit pipeline
    http.Shutdown();
  };
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping: no new connections, finishing in-flight commits", sig);
    stop();
  });

  // PostgreSQL: once the store breaks, probe the database with a bounded
  // backoff; when it answers (restarted, or a standby promoted), stop as
  // for a signal and have the caller start again from what it holds.
  std::atomic<bool> restart{false};
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool watch_done = false;  // guarded by watch_mu
  std::thread watcher;
  if (postgres) {
    watcher = std::thread([&] {
      std::unique_lock<std::mutex> lock(watch_mu);
      auto wait = [&](std::chrono::milliseconds d) {
        return !watch_cv.wait_for(lock, d, [&] { return watch_done; });
      };
      while (wait(std::chrono::milliseconds(200))) {
        Status health = (*store)->health();
        if (health.ok()) continue;
        spdlog::error("the store is broken, writes are refused until the database answers again: {}",
                      health.message());
        auto backoff = std::chrono::milliseconds(100);
        for (int attempt = 1; wait(backoff); ++attempt) {
          Status probe = ProbePostgres(config.store);
          if (probe.ok()) {
            spdlog::warn("{} answers again: restarting to rebuild the state from it", where);
            restart = true;
            boost::asio::post(ioc, [&] {
              signals.cancel();
              stop();
            });
            return;
          }
          spdlog::warn("probe {} of {} failed, next in {} ms: {}", attempt, where,
                       std::min<long long>(backoff.count() * 2, 5000), probe.message());
          backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        }
        return;
      }
    });
  }

  spdlog::info("{} serving on {} with data in {}, io threads: {}", config.build.Line(),
               http.address(), postgres ? where : config.data_dir, threads);
  if (config.announce) {
    std::printf("listening on %s\n", http.address().c_str());
    std::fflush(stdout);
  }
  BoundAddress() = http.address();
  if (on_listening) on_listening(http.address());

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (std::thread& t : pool) t.join();
  if (watcher.joinable()) {
    {
      std::lock_guard<std::mutex> lock(watch_mu);
      watch_done = true;
    }
    watch_cv.notify_all();
    watcher.join();
  }
  service.Stop();
  if (restart) {
    spdlog::info("dray stopped; starting again");
    return kRestartToRebuild;
  }
  spdlog::info("dray stopped");
  return 0;
}

void ExecSelf() {
  std::vector<std::string> args;
  if (FILE* f = std::fopen("/proc/self/cmdline", "rb")) {
    std::string arg;
    for (int c; (c = std::fgetc(f)) != EOF;) {
      if (c == 0) {
        args.push_back(std::move(arg));
        arg.clear();
      } else {
        arg.push_back(static_cast<char>(c));
      }
    }
    std::fclose(f);
  }
  KeepListenAddress(&args, BoundAddress());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  execv("/proc/self/exe", argv.data());
  spdlog::error("cannot start again (execv): {}", std::strerror(errno));
}

}  // namespace dray
