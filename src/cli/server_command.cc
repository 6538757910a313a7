#include "cli/server_command.h"

#include <spdlog/spdlog.h>

#include <pthread.h>

#include <atomic>
#include <filesystem>
#include <csignal>
#include <memory>
#include <mutex>
#include <thread>

#include "cli/exec_worker.h"
#include "server/server_main.h"

namespace dray {

namespace {

// How to call this binary from the current directory ("build/bin/dray"),
// for the "try:" line printed at start.
std::string DrayCommand() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::string cmd = "dray";
  if (!ec) {
    auto rel = std::filesystem::relative(self, std::filesystem::current_path(ec), ec);
    cmd = !ec && !rel.empty() && rel.string().rfind("..", 0) != 0 ? rel.string() : self.string();
  }
  return cmd;
}

// "dray submit [--server URL]" and "dray worker --exec [--server URL]".
std::string SubmitCommand(const std::string& address) {
  std::string c = DrayCommand() + " submit";
  if (address != "127.0.0.1:7070") c += " --server http://" + address;
  return c;
}
std::string WorkerCommand(const std::string& address) {
  std::string c = DrayCommand() + " worker --exec";
  if (address != "127.0.0.1:7070") c += " --server http://" + address;
  return c;
}

struct ServerFlags {
  ServerConfig config;
  std::int64_t header_timeout_ms = 10'000;
  std::int64_t idle_timeout_ms = 120'000;
  std::int64_t commit_max_wait_us = 0;
  bool worker = false;
  int worker_concurrency = 4;
  std::string worker_queues = "default";
};

// `dray server --worker`. Shutdown runs in this order, so that the worker's
// last acks still reach a live server: on SIGINT/SIGTERM the worker stops
// leasing and its running commands finish (a second signal kills them; their
// attempts then fail and are retried), then the server gets the signal and
// stops as usual. To see the signals first, they are blocked in every thread
// (RunServer's threads inherit the mask) and taken by one thread with
// sigwait(); it hands a signal on to RunServer's handler by raising it with
// the signal unblocked on that thread only.
int RunServerWithWorker(const ServerFlags& f) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &sigs, &old);

  std::mutex mu;
  bool server_done = false;  // guarded by mu: RunServer returned, its handler is gone
  std::unique_ptr<ExecWorker> worker;  // set once, under mu
  std::atomic<bool> worker_done{false};  // release/acquire: the worker thread's last writes
  std::thread worker_thread;

  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    ExecWorker* w;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (server_done) return;  // woken by the main thread: nothing to do
      w = worker.get();  // null: the server is not listening yet
    }
    if (w) {
      spdlog::info("signal {}: stopping the command worker; its running commands finish "
                   "(send it again to kill them)", sig);
      w->Stop();
      const timespec tick{0, 100'000'000};
      bool killed = false;
      while (!worker_done.load(std::memory_order_acquire)) {
        if (sigtimedwait(&sigs, nullptr, &tick) > 0 && !killed) {
          spdlog::info("killing the command worker's running commands");
          w->Stop(StopMode::kCancelRunning);
          killed = true;
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    if (server_done) return;
    pthread_sigmask(SIG_UNBLOCK, &sigs, nullptr);
    raise(sig);  // runs RunServer's handler on this thread
  });

  int rc = RunServer(f.config, [&](const std::string& address) {
    ExecWorkerOptions wo;
    wo.server = "http://" + address;
    wo.queues = f.worker_queues;
    wo.concurrency = f.worker_concurrency;
    {
      std::lock_guard<std::mutex> lock(mu);
      worker = std::make_unique<ExecWorker>(wo);
    }
    worker_thread = std::thread([&] {
      worker->Run().IgnoreError();
      worker_done.store(true, std::memory_order_release);
    });
    std::printf("a command worker serves queue(s) %s\ntry:  %s --wait -- echo hello\n",
                f.worker_queues.c_str(), SubmitCommand(address).c_str());
    std::fflush(stdout);
  });
  {
    std::lock_guard<std::mutex> lock(mu);
    server_done = true;
  }
  // Wakes the signal thread if no signal came (RunServer failed or ended on
  // its own); a no-op for one that already returned.
  pthread_kill(signals.native_handle(), SIGTERM);
  if (worker) {
    // Normally stopped already; if the server ended first, its acks cannot
    // be delivered anyway: kill the commands, do not wait for them.
    worker->Stop(StopMode::kCancelRunning);
    worker_thread.join();
  }
  signals.join();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return rc;
}

}  // namespace

void AddServerCommand(CLI::App* app, const BuildInfo& build, std::function<int()>* run) {
  auto f = std::make_shared<ServerFlags>();
  ServerConfig& c = f->config;
  c.build = build;
  CLI::App* cmd = app->add_subcommand(
      "server", "Run the Dray server (embedded SQLite store, or PostgreSQL with --store)");
  cmd->add_option("--listen", c.listen, "host:port to serve HTTP on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--data", c.data_dir, "directory for the SQLite store")->capture_default_str();
  cmd->add_option("--store", c.store,
                  "a PostgreSQL URI (postgresql://user@host/db; several hosts with "
                  "target_session_attrs=read-write find the primary) to store tasks there "
                  "instead of in --data")
      ->envname("DRAY_STORE");
  cmd->add_option("--io-threads", c.io_threads,
                  "threads serving HTTP (0: one less than the cores, at least 1)")
      ->capture_default_str();
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
  cmd->add_option("--max-commit-backlog", c.max_commit_backlog,
                  "writes waiting for the commit thread past which submits get 429")
      ->capture_default_str();
  cmd->add_option("--disk-reserve-mb", c.disk_reserve_mb,
                  "space held back so running tasks can report when the disk fills (0: off)")
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
  cmd->add_option("--worker-grace-ms", c.worker_grace_ms,
                  "a registered worker silent this long is declared dead; its tasks are released")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{500}, std::int64_t{3'600'000}));
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
    int rc = f->worker ? RunServerWithWorker(*f)
                       : RunServer(f->config, [](const std::string& address) {
                           std::printf("try:  %s &\n      %s --wait -- echo hello\n",
                                       WorkerCommand(address).c_str(),
                                       SubmitCommand(address).c_str());
                           std::fflush(stdout);
                         });
    if (rc == kRestartToRebuild) {
      ExecSelf();  // returns only if it failed
      return 1;
    }
    return rc;
  };
}

}  // namespace dray
