#include "cli/worker_command.h"

#include <spdlog/spdlog.h>

#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "cli/exec_worker.h"

namespace dray {

namespace {

void LogStart(const ExecWorker& w, const ExecWorkerOptions& wo) {
  spdlog::info("command worker on {} serving {} with {} slots", wo.server, wo.queues, wo.concurrency);
  if (wo.register_worker) {
    std::string capacity;
    for (const auto& [k, v] : w.registration().capacity) {
      capacity += (capacity.empty() ? "" : ", ") + k + "=" + std::to_string(v);
    }
    spdlog::info("registering with {}", capacity);
  }
  spdlog::info("task limits: {}", w.limits_description());
}

// Runs a command worker until it stops; exit 0, or 2 when it failed.
int RunExecWorker(const ExecWorkerOptions& wo) {
  // SIGINT/SIGTERM are taken by one thread with sigwait(), never by a
  // handler interrupting arbitrary code: every thread started below
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ExecWorker w(wo);
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    // First signal: finish running commands; second: kill them (their
    // attempts fail and are retried elsewhere).
    for (int n = 0; n < 2; ++n) {
      int sig = 0;
      sigwait(&signals, &sig);
      if (done) return;
      if (n == 0) {
        spdlog::info("signal {}: finishing running tasks (again to kill them)", sig);
        w.Stop();
      } else {
        spdlog::info("signal {}: killing running tasks", sig);
        w.Stop(StopMode::kCancelRunning);
      }
    }
  });
  LogStart(w, wo);
  Status s = w.Run();
  done = true;
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter if Run ended on its own
  waiter.join();
  if (!s.ok()) return Fail(s);
  auto st = w.stats();
  spdlog::info("worker stopped: {} leased, {} succeeded, {} failed", st.leased, st.succeeded, st.failed);
  return 0;
}

}  // namespace

std::function<int()> AddWorkerCommand(CLI::App* app, CliCommon* common) {
  struct Flags {
    ExecWorkerOptions wo;
    bool exec = false;
    bool no_register = false;
  };
  auto f = std::make_shared<Flags>();
  ExecWorkerOptions& wo = f->wo;
  CLI::App* worker = app->add_subcommand("worker", "Run a worker");
  AddCommonFlags(worker, common);
  worker->add_flag("--exec", f->exec, "run command tasks (payload {\"argv\": [...]})");
  worker->add_option("--queues", wo.queues, "comma-separated queues")->capture_default_str();
  worker->add_option("--concurrency", wo.concurrency, "tasks at once")->capture_default_str();
  worker->add_option("--name", wo.name, "worker name (default host-pid)");
  worker->add_flag("--no-register", f->no_register,
                   "do not register capacity and labels (runs only tasks that need neither)");
  worker->add_option("--capacity", wo.capacity,
                     "resources to advertise over the machine's, e.g. cpu=4000,memory_mb=8192,licenses=3");
  worker->add_option("--labels", wo.labels, "labels, e.g. zone=a,arch=arm64");
  worker->add_option("--gpus", wo.gpus, "GPU device ids to hand out, e.g. 0,1 (default: those found)");
  worker->add_option("--limits", wo.limits,
                     "how task requests are enforced: auto, cgroup2, cgroup1, rlimit or none")
      ->capture_default_str();
  return [=]() -> int {
    if (!worker->parsed()) return -1;
    if (!f->exec) {
      std::fprintf(stderr, "dray worker: only --exec workers exist in the CLI; "
                           "write others with the SDK (include/dray/worker.h)\n");
      return 2;
    }
    f->wo.server = common->server;
    f->wo.ns = common->ns;
    f->wo.register_worker = !f->no_register;
    return RunExecWorker(f->wo);
  };
}

}  // namespace dray
