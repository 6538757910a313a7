// The command worker (`dray worker --exec`, `dray server --worker`): leases
// tasks and runs each one's payload as a command (see exec_runner.h). A zero
// exit completes the task with {"exit_code", "stdout", "stderr", ...}; a
// non-zero exit (or a timeout, cancel or signal) fails the attempt with the
// exit code and the last line of stderr as the error, and keeps the same
// result object beside it; a payload that is not a command, or a program that cannot start,
// fails the task for good.
#pragma once

#include <memory>
#include <string>

#include "cli/task_limits.h"
#include "dray/worker.h"

namespace dray {

struct ExecWorkerOptions {
  std::string server = "http://127.0.0.1:7070";
  std::string ns = "default";
  std::string queues = "default";  // comma-separated
  int concurrency = 4;
  std::string name;
  // Registration (docs/placement.md): the machine's capacity as found
  // (MachineCapacity), with `capacity` ("cpu=4000,memory_mb=8192,licenses=3")
  // over it, `labels` ("zone=a,arch=arm64") and `gpus` (device ids "0,1",
  // over those found).
  bool register_worker = true;
  std::string capacity;
  std::string labels;
  std::string gpus;
  // How each task's "memory_mb" and "cpu" are enforced on its child:
  // auto (the best the machine allows), cgroup2, cgroup1, rlimit or none.
  std::string limits = "auto";
};

class ExecWorker {
 public:
  explicit ExecWorker(const ExecWorkerOptions& options);
  ~ExecWorker();
  // Blocks until Stop(). Fails at once for options it cannot honour (a
  // limit method the machine does not allow, a malformed capacity).
  Status Run();
  // See Worker::Stop. kCancelRunning kills running commands (SIGTERM, then
  // SIGKILL); their attempts fail and are retried.
  void Stop(StopMode mode = StopMode::kFinishRunning);
  Worker::Stats stats() const { return worker_->stats(); }
  // What it registers (empty id when it does not) and how it limits tasks.
  const WorkerSpec& registration() const { return registration_; }
  std::string limits_description() const;

 private:
  Status setup_;
  WorkerSpec registration_;
  std::unique_ptr<LimitEnforcer> enforcer_;
  std::unique_ptr<Worker> worker_;
};

}  // namespace dray
