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

#include "dray/worker.h"

namespace dray {

struct ExecWorkerOptions {
  std::string server = "http://127.0.0.1:7070";
  std::string ns = "default";
  std::string queues = "default";  // comma-separated
  int concurrency = 4;
  std::string name;
};

class ExecWorker {
 public:
  explicit ExecWorker(const ExecWorkerOptions& options);
  Status Run();  // blocks until Stop()
  // See Worker::Stop. kCancelRunning kills running commands (SIGTERM, then
  // SIGKILL); their attempts fail and are retried.
  void Stop(StopMode mode = StopMode::kFinishRunning);
  Worker::Stats stats() const { return worker_.stats(); }

 private:
  Worker worker_;
};

}  // namespace dray
