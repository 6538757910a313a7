#include "cli/server_command.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <thread>

#include "cli/exec_worker.h"
#include "server/server_main.h"

namespace dray {

void AddServerCommand(CLI::App* app, std::function<int()>* run) {
  struct Flags {
    ServerConfig config;
    std::int64_t header_timeout_ms = 10'000;
    std::int64_t idle_timeout_ms = 120'000;
    std::int64_t commit_max_wait_us = 0;
    bool worker = false;
    int worker_concurrency = 4;
    std::string worker_queues = "default";
  };
  auto f = std::make_shared<Flags>();
  ServerConfig& c = f->config;
  CLI::App* cmd = app->add_subcommand("server", "Run the Dray server (embedded SQLite store)");
  cmd->add_option("--listen", c.listen, "host:port to serve HTTP on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--data", c.data_dir, "directory for the SQLite store")->capture_default_str();
  cmd->add_option("--io-threads", c.io_threads, "threads serving HTTP")->capture_default_str();
  cmd->add_option("--max-body-bytes", c.limits.max_body_bytes, "largest request body")
      ->capture_default_str();
  cmd->add_option("--max-payload-bytes", c.limits.max_payload_bytes, "largest task payload")
      ->capture_default_str();
  cmd->add_option("--max-result-bytes", c.limits.max_result_bytes, "largest task result")
      ->capture_default_str();
  cmd->add_option("--max-batch", c.limits.max_batch, "most tasks per submit, acks per call")
      ->capture_default_str();
  cmd->add_option("--max-connections", c.max_connections, "most open connections")
      ->capture_default_str();
  cmd->add_option("--max-live-tasks", c.max_live_tasks, "most unfinished tasks; more get 429")
      ->capture_default_str();
  cmd->add_option("--max-wait-ms", c.max_wait_ms, "longest long-poll")->capture_default_str();
  cmd->add_option("--header-timeout-ms", f->header_timeout_ms, "time to send a request header")
      ->capture_default_str();
  cmd->add_option("--idle-timeout-ms", f->idle_timeout_ms, "idle keep-alive before closing")
      ->capture_default_str();
  cmd->add_option("--commit-max-batch", c.commit_max_batch, "most rows per transaction")
      ->capture_default_str();
  cmd->add_option("--commit-max-wait-us", f->commit_max_wait_us,
                  "extra wait to grow a commit batch (0: natural batching)")
      ->capture_default_str();
  cmd->add_option("--idempotency-window-ms", c.idempotency_window_ms,
                  "how long a key maps to its first task")
      ->capture_default_str();
  cmd->add_option("--retention-ms", c.retention_ms, "purge finished tasks older than this")
      ->capture_default_str();
  cmd->add_option("--purge-interval-ms", c.purge_interval_ms, "how often to purge")
      ->capture_default_str();
  cmd->add_flag("--worker", f->worker, "also run a command worker (like `dray worker --exec`)");
  cmd->add_option("--worker-concurrency", f->worker_concurrency, "command worker threads")
      ->capture_default_str();
  cmd->add_option("--worker-queues", f->worker_queues, "queues the command worker serves")
      ->capture_default_str();

  *run = [f, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    f->config.header_timeout = std::chrono::milliseconds(f->header_timeout_ms);
    f->config.idle_timeout = std::chrono::milliseconds(f->idle_timeout_ms);
    f->config.commit_max_wait = std::chrono::microseconds(f->commit_max_wait_us);
    std::unique_ptr<ExecWorker> worker;
    std::thread worker_thread;
    int rc = RunServer(f->config, [&](const std::string& address) {
      if (!f->worker) return;
      ExecWorkerOptions wo;
      wo.server = "http://" + address;
      wo.queues = f->worker_queues;
      wo.concurrency = f->worker_concurrency;
      worker = std::make_unique<ExecWorker>(wo);
      worker_thread = std::thread([&worker] { worker->Run().IgnoreError(); });
      std::printf(
          "a command worker serves queue(s) %s\ntry:  build/bin/dray submit --wait -- echo hello\n",
          f->worker_queues.c_str());
      std::fflush(stdout);
    });
    if (worker) {
      worker->Stop();
      worker_thread.join();
    }
    return rc;
  };
}

}  // namespace dray
