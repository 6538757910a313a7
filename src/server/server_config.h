// Everything `dray server` can be told. Defaults are the safe ones.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/limits.h"

namespace dray {

// What the running binary is, as the build stamped it (src/cli/main.cc):
// `dray --version`, the server's first log line, /healthz and /metrics.
struct BuildInfo {
  std::string version = "unknown";   // the project's version (CMakeLists.txt)
  std::string revision = "unknown";  // git commit, "-dirty" if the tree differed
  std::string Line() const { return "dray " + version + " (" + revision + ")"; }
};

struct ServerConfig {
  BuildInfo build;
  std::string listen = "127.0.0.1:7070";  // host:port; port 0 picks a free one
  std::string data_dir = "./dray-data";   // the SQLite file lives here
  // Where tasks are stored: empty for the SQLite file in data_dir, or a
  // PostgreSQL URI (postgresql://user@host/db, several hosts allowed).
  std::string store;
  // Threads serving HTTP; 0: one less than the cores, at least one (the
  // commit pipeline's thread takes the last core). On 2 cores one io thread
  // gave W2 34k/s and W3 p99 1.08 ms against 30k/s and 1.24 ms with two.
  int io_threads = 0;

  Limits limits;                          // request and task bounds
  std::chrono::milliseconds header_timeout{10'000};  // to read a request's header
  std::chrono::milliseconds idle_timeout{120'000};   // keep-alive without a request
  std::size_t max_connections = 10'000;
  std::int64_t max_wait_ms = 60'000;       // longest long-poll (lease, wait_ms)

  // Group commit.
  std::size_t commit_max_batch = 20'000;   // mutations per transaction
  std::chrono::microseconds commit_max_wait{0};  // extra wait to grow a batch

  // Engine.
  std::int64_t idempotency_window_ms = 24LL * 3600 * 1000;
  // A registered worker silent this long is declared dead and its tasks
  // are released at once (docs/workers.md).
  std::int64_t worker_grace_ms = 10'000;
  std::int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // purge terminal tasks older than this
  std::int64_t purge_interval_ms = 60'000;
  std::size_t max_live_tasks = 10'000'000;  // submits past this get 429
  // Submits that find this many mutations waiting for the commit thread get
  // 429 with Retry-After instead of joining the queue: overload is refused at
  // the door, so memory and the latency of what was accepted stay bounded
  // (50k is about half a second of commits at W1's batched rate). Leases and
  // acks are always admitted: they are what drains the queue.
  std::size_t max_commit_backlog = 50'000;
  // Space held back beside the database (DiskGuard): when the disk fills,
  // submits get 507 and this space lets running tasks still report. 0: off.
  std::uint64_t disk_reserve_mb = 64;

  // Written to stdout once the server listens: "listening on HOST:PORT".
  bool announce = true;
};

}  // namespace dray
