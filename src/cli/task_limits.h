// What the command worker (`dray worker --exec`) has, and the limits it
// puts on each task's child process (docs/placement.md).
//
// A task's "memory_mb" and "cpu" (millicores) requests become limits on its
// child, enforced by the best method the machine allows:
//   cgroup2  a cgroup v2 per task: memory.max (no swap beyond it) and
//            cpu.max; the kernel kills a child past its memory, and
//            memory.events says so.
//   cgroup1  the same with cgroup v1's memory and cpu controllers
//            (memory.limit_in_bytes, cpu.cfs_quota_us; memory.oom_control).
//   rlimit   no cgroup to write: the child's resident memory is read every
//            50 ms and the child killed past its limit; CPU is not limited.
//   none     nothing is enforced.
// A child killed for its memory fails its attempt with "memory limit
// exceeded".
//
// Threading: a LimitEnforcer may prepare cages from any number of threads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dray/status.h"

namespace dray {

enum class LimitMethod { kNone, kCgroupV2, kCgroupV1, kRlimit };

std::string_view LimitMethodName(LimitMethod m);  // none, cgroup2, cgroup1, rlimit
std::optional<LimitMethod> ParseLimitMethod(std::string_view name);

struct TaskLimits {
  std::int64_t memory_bytes = 0;    // 0: none
  std::int64_t cpu_millicores = 0;  // 0: none
};

// The machine as a worker advertises it: "cpu" (1000 per CPU this process
// may run on), "memory_mb" (MemTotal, or the worker's own cgroup limit if
// lower), "gpu" (NVIDIA devices under /proc/driver/nvidia/gpus) with their
// ids in `gpu_devices`.
std::map<std::string, std::int64_t> MachineCapacity(std::vector<std::string>* gpu_devices);

// One child's limits: made before fork, entered by the child, read after.
class Cage {
 public:
  virtual ~Cage() = default;  // removes what it made (a cgroup)
  // In the child, between fork and exec: async-signal-safe calls only.
  virtual void EnterFromChild() const noexcept = 0;
  // In the parent while the child runs: whether it must be killed for its
  // memory (the rlimit method's watch; cgroups let the kernel do it).
  virtual bool OverMemory(pid_t pid) = 0;
  // After the child is reaped: whether its memory limit ended it.
  virtual bool MemoryExceeded() const = 0;
};

class LimitEnforcer {
 public:
  // `want` unset: the best method this machine allows. A method asked for
  // that the machine does not allow is FailedPrecondition, saying why.
  static StatusOr<std::unique_ptr<LimitEnforcer>> Create(std::optional<LimitMethod> want);
  virtual ~LimitEnforcer() = default;
  virtual LimitMethod method() const = 0;
  // For the worker's start-up line: the method and what it covers.
  virtual std::string Describe() const = 0;
  // Null when there is nothing to limit.
  virtual StatusOr<std::unique_ptr<Cage>> Prepare(const TaskLimits& limits) = 0;
};

}  // namespace dray
