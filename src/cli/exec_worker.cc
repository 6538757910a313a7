#include "cli/exec_worker.h"

#include <map>
#include <stdexcept>

#include "cli/cli_common.h"
#include "cli/exec_runner.h"
#include "core/json_writer.h"

namespace dray {
namespace {

std::string LastLine(const std::string& text) {
  std::size_t end = text.find_last_not_of("\r\n");
  if (end == std::string::npos) return "";
  std::size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

ClientOptions ClientFor(const ExecWorkerOptions& o) {
  ClientOptions c;
  c.server = o.server;
  c.ns = o.ns;
  return c;
}

WorkerOptions WorkerFor(const ExecWorkerOptions& o) {
  WorkerOptions w;
  w.queues = SplitComma(o.queues);
  w.concurrency = o.concurrency;
  w.name = o.name;
  // A command is killed on cancel only once a heartbeat brings the news:
  // keep that within a second or so (a few requests a second at most).
  w.heartbeat_interval = std::chrono::seconds(1);
  return w;
}

}  // namespace

ExecWorker::ExecWorker(const ExecWorkerOptions& options) {
  WorkerOptions wo = WorkerFor(options);
  std::optional<LimitMethod> method;
  if (options.limits != "auto") {
    method = ParseLimitMethod(options.limits);
    if (!method) {
      setup_ = InvalidArgument("--limits must be auto, cgroup2, cgroup1, rlimit or none, not '" +
                               options.limits + "'");
    }
  }
  if (setup_.ok()) {
    auto enforcer = LimitEnforcer::Create(method);
    if (enforcer.ok()) {
      enforcer_ = std::move(*enforcer);
    } else {
      setup_ = enforcer.status();
    }
  }
  if (setup_.ok() && options.register_worker) {
    registration_.capacity = MachineCapacity(&registration_.gpu_devices);
    setup_ = ParseAmounts(options.capacity, "--capacity", &registration_.capacity);
    if (setup_.ok()) setup_ = ParsePairs(options.labels, "--labels", &registration_.labels);
    if (!options.gpus.empty()) {
      registration_.gpu_devices = SplitComma(options.gpus);
      registration_.capacity["gpu"] = static_cast<std::int64_t>(registration_.gpu_devices.size());
    }
    registration_.queues = wo.queues;
    wo.registration = registration_;
  }
  worker_ = std::make_unique<Worker>(ClientFor(options), std::move(wo));
  const bool has_gpus = !registration_.gpu_devices.empty();
  worker_->HandleAll([this, has_gpus](TaskContext& ctx) -> std::string {
    std::optional<std::chrono::milliseconds> timeout;
    if (ctx.task().timeout_ms > 0) timeout = std::chrono::milliseconds(ctx.task().timeout_ms);
    // What the command knows of its task: its id, its workflow, and the
    // results of the tasks it depends on (JSON, as a lease carries them).
    std::vector<std::string> env = {"DRAY_TASK_ID=" + ctx.task().id,
                                    "DRAY_ATTEMPT=" + std::to_string(ctx.task().attempts)};
    if (!ctx.task().workflow.empty()) {
      env.push_back("DRAY_WORKFLOW_ID=" + ctx.task().workflow);
      env.push_back("DRAY_TASK_NAME=" + ctx.task().node);
    }
    if (!ctx.parents().empty()) {
      std::string parents;
      AppendParentsJson(ctx.parents(), &parents);
      env.push_back("DRAY_PARENTS=" + parents);
    }
    if (ctx.shard_total() > 0) {
      env.push_back("DRAY_SHARD_INDEX=" + std::to_string(ctx.shard_index()));
      env.push_back("DRAY_SHARD_TOTAL=" + std::to_string(ctx.shard_total()));
    }
    // The GPUs this attempt was given, and none of the others.
    if (has_gpus || !ctx.gpu_devices().empty()) {
      std::string devices;
      for (const std::string& d : ctx.gpu_devices()) devices += (devices.empty() ? "" : ",") + d;
      env.push_back("CUDA_VISIBLE_DEVICES=" + devices);
    }
    const auto& requested = ctx.task().placement.resources;
    TaskLimits want;
    if (auto m = requested.find("memory_mb"); m != requested.end()) {
      want.memory_bytes = m->second * 1024 * 1024;
    }
    if (auto c = requested.find("cpu"); c != requested.end()) want.cpu_millicores = c->second;
    auto cage = enforcer_->Prepare(want);
    if (!cage.ok()) throw std::runtime_error(cage.status().message());
    ExecLimits limits;
    limits.cage = cage->get();
    auto r = RunCommand(ctx.payload(), timeout, ctx.stop_token(), limits, env);
    if (!r.ok()) throw NonRetryableError(r.status().message());
    // A failed run keeps its exit code and output as the task's result too.
    const std::string result = ExecResultJson(*r);
    if (r->memory_exceeded) {
      throw TaskFailed("memory limit exceeded: the task asked for memory_mb=" +
                           std::to_string(want.memory_bytes / (1024 * 1024)) + " (enforced by " +
                           std::string(LimitMethodName(enforcer_->method())) + ")",
                       result);
    }
    if (r->timed_out) {
      throw TaskFailed("killed after the task's timeout of " +
                           std::to_string(ctx.task().timeout_ms) + " ms",
                       result);
    }
    if (r->stopped) {
      throw TaskFailed(ctx.cancel_requested() ? "cancelled"
                                              : "stopped: the lease was lost or the worker stopped",
                       result);
    }
    if (r->signal) {
      throw TaskFailed("killed by signal " + std::to_string(r->signal) + ": " +
                           LastLine(r->stderr_tail),
                       result);
    }
    if (r->exit_code != 0) {
      std::string line = LastLine(r->stderr_tail);
      throw TaskFailed("exit code " + std::to_string(r->exit_code) + (line.empty() ? "" : ": " + line),
                       result);
    }
    return result;
  });
}

ExecWorker::~ExecWorker() = default;

Status ExecWorker::Run() {
  if (!setup_.ok()) return setup_;
  return worker_->Run();
}

void ExecWorker::Stop(StopMode mode) { worker_->Stop(mode); }

std::string ExecWorker::limits_description() const {
  return enforcer_ ? enforcer_->Describe() : "none";
}

}  // namespace dray
