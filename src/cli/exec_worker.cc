#include "cli/exec_worker.h"

#include <sstream>

#include "cli/exec_runner.h"
#include "core/json_writer.h"

namespace dray {
namespace {

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

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

ExecWorker::ExecWorker(const ExecWorkerOptions& options)
    : worker_(ClientFor(options), WorkerFor(options)) {
  worker_.HandleAll([](TaskContext& ctx) -> std::string {
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
    auto r = RunCommand(ctx.payload(), timeout, ctx.stop_token(), ExecLimits{}, env);
    if (!r.ok()) throw NonRetryableError(r.status().message());
    // A failed run keeps its exit code and output as the task's result too.
    const std::string result = ExecResultJson(*r);
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

Status ExecWorker::Run() { return worker_.Run(); }
void ExecWorker::Stop(StopMode mode) { worker_.Stop(mode); }

}  // namespace dray
