// Runs one command task in a child process, without a shell.
//
// The payload: {"argv": ["prog", "arg", ...], "env": {"K": "V"}, "cwd": "/dir",
// "stdin": "text"}. The child gets its own process group; it is sent SIGTERM
// (then SIGKILL after a grace period) when the deadline passes or `stop`
// fires. Stdout and stderr are captured, keeping the last `tail_bytes` of
// each. The call returns once the command itself exited; whatever it left
// running in its process group is killed then (SIGKILL).
//
// Threading: any number of RunCommand calls may run at once on different
// threads; each blocks its caller and starts no thread. It sets SIGPIPE to
// SIG_IGN for the whole process (a command that closes its stdin early must
// not kill the worker).
//
// Signal state: the child starts with an empty signal mask and SIGPIPE at
// its default, whatever the calling thread blocks.
#pragma once

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "dray/status.h"

namespace dray {

struct ExecResult {
  int exit_code = -1;        // valid when signal == 0
  int signal = 0;            // the signal that ended the child, if any
  bool timed_out = false;
  bool stopped = false;      // ended because `stop` fired
  bool memory_exceeded = false;  // killed for passing its memory limit (see Cage)
  std::string stdout_tail;
  std::string stderr_tail;
  std::int64_t duration_ms = 0;
};

class Cage;

struct ExecLimits {
  std::size_t tail_bytes = 64 * 1024;
  std::chrono::milliseconds kill_grace{2000};
  // The child's resource limits (task_limits.h): it enters the cage before
  // exec; null for none.
  Cage* cage = nullptr;
};

// Fails (InvalidArgument) when the payload is not a command, and
// (FailedPrecondition) when the program cannot be started. `env` ("K=V")
// is added to the worker's environment before the payload's own "env".
StatusOr<ExecResult> RunCommand(const std::string& payload_json,
                                std::optional<std::chrono::milliseconds> timeout,
                                std::stop_token stop, const ExecLimits& limits = {},
                                const std::vector<std::string>& env = {});

// {"exit_code", "signal", "stdout", "stderr", "duration_ms", "timed_out"}
std::string ExecResultJson(const ExecResult& r);

}  // namespace dray
