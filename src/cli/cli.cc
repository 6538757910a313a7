#include "cli/cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <thread>

#include "cli/cli_common.h"
#include "cli/event_command.h"
#include "cli/exec_worker.h"
#include "cli/schedule_command.h"
#include "cli/server_command.h"
#include "cli/workers_command.h"
#include "cli/yaml_json.h"
#include "core/json_writer.h"
#include "core/json_codec.h"
#include "core/time_format.h"
#include "dray/client.h"

namespace json = boost::json;

namespace dray {
namespace {

void PrintWorkflow(const WorkflowInfo& info) {
  const Workflow& w = info.workflow;
  std::printf("id:         %s\n", w.id.c_str());
  if (!w.name.empty()) std::printf("name:       %s\n", w.name.c_str());
  std::printf("state:      %s%s\n", std::string(WorkflowStateName(w.state)).c_str(),
              w.cancel_requested && w.state == WorkflowState::kRunning ? " (cancel requested)" : "");
  std::string counts;
  for (const auto& [st, n] : info.counts) {
    if (n == 0) continue;
    counts += (counts.empty() ? "" : ", ") + std::string(TaskStateName(st)) + " " + std::to_string(n);
  }
  std::printf("tasks:      %d (%s)\n", w.tasks, counts.c_str());
  std::printf("created:    %s\n", CliTime(w.created_at).c_str());
  if (w.finished_at) std::printf("finished:   %s\n", CliTime(w.finished_at).c_str());
  std::printf("\n%-20s  %-10s  %-8s  %-24s  %s\n", "TASK", "STATE", "ATTEMPTS", "DEPENDS ON",
              "RESULT / WAITING FOR");
  for (const WorkflowTaskInfo& t : info.tasks) {
    std::string deps;
    for (const std::string& d : t.depends_on) deps += (deps.empty() ? "" : ",") + d;
    std::string note = !t.wait_reason.empty() ? t.wait_reason
                       : !t.error.empty()     ? t.error
                                              : t.result;
    if (note.size() > 60) note = note.substr(0, 57) + "...";
    std::printf("%-20s  %-10s  %-8d  %-24s  %s\n", t.name.c_str(),
                std::string(TaskStateName(t.state)).c_str(), t.attempts,
                deps.empty() ? "-" : deps.c_str(), note.c_str());
  }
}

void PrintTask(const Task& t, bool as_json) {
  if (as_json) {
    std::printf("%s\n", TaskToJson(t).c_str());
    return;
  }
  std::printf("id:         %s\n", t.id.c_str());
  std::printf("type:       %s\n", t.type.c_str());
  std::printf("queue:      %s\n", t.queue.c_str());
  std::printf("state:      %s%s\n", std::string(TaskStateName(t.state)).c_str(),
              t.cancel_requested ? " (cancel requested)" : "");
  if (!t.wait_reason.empty()) {
    std::printf("waiting:    %s (%s)\n", t.wait_reason.c_str(), t.wait_detail.c_str());
  }
  if (!t.concurrency_key.empty()) std::printf("key:        %s\n", t.concurrency_key.c_str());
  if (!t.placement.empty()) {
    // The placement fields as the API writes them, one line.
    std::printf("placement:  {%s}\n", PlacementToJson(t.placement).c_str());
  }
  std::printf("attempts:   %d of %d\n", t.attempts, t.max_attempts);
  std::printf("payload:    %s\n", t.payload.c_str());
  if (!t.result.empty()) std::printf("result:     %s\n", t.result.c_str());
  if (!t.error.empty()) std::printf("error:      %s\n", t.error.c_str());
  std::printf("created:    %s\n", CliTime(t.created_at).c_str());
  if (t.finished_at) std::printf("finished:   %s\n", CliTime(t.finished_at).c_str());
  for (const Attempt& a : t.history) {
    std::printf("attempt %d:  %s on %s, %s .. %s%s%s\n", a.number,
                std::string(AttemptOutcomeName(a.outcome)).c_str(), a.worker.c_str(),
                CliTime(a.started_at).c_str(), CliTime(a.ended_at).c_str(), a.error.empty() ? "" : ": ",
                a.error.c_str());
  }
}


}  // namespace

int RunCli(int argc, char** argv, const BuildInfo& build) {
  // Build spdlog's registry on this thread before any other thread logs: the
  // library is not built for ThreadSanitizer, which then cannot see that its
  // lazy initialisation is synchronised.
  spdlog::set_level(spdlog::level::info);
  CLI::App app{"dray: a durable task scheduler and job server", "dray"};
  app.set_version_flag("--version", build.Line());
  app.require_subcommand(1);
  CliCommon common;
  if (const char* env = std::getenv("DRAY_SERVER")) common.server = env;
  auto add_common = [&](CLI::App* cmd) { AddCommonFlags(cmd, &common); };
  std::function<int()> run;
  std::vector<std::function<int()>> runs;

  std::function<int()> server_run;
  AddServerCommand(&app, build, &server_run);
  runs.push_back([&] { return server_run(); });

  // submit
  TaskSpec spec;
  std::string payload, run_at;
  std::int64_t delay_ms = -1, timeout_ms = -1;
  int max_attempts = 0;
  std::vector<std::string> labels, command;
  std::vector<std::string> require, prefer;
  std::string resources;
  bool broadcast = false;
  bool wait = false;
  std::int64_t wait_timeout_ms = 3'600'000;
  CLI::App* submit = app.add_subcommand("submit", "Submit a task; after --, the command to run");
  add_common(submit);
  submit->add_option("type", spec.type, "task type (default: exec)");
  submit->add_option("--payload", payload, "payload as JSON");
  submit->add_option("--queue", spec.queue, "queue")->capture_default_str();
  submit->add_option("--priority", spec.priority, "lower runs first");
  submit->add_option("--delay-ms", delay_ms, "start no sooner than this many ms from now");
  submit->add_option("--run-at", run_at, "start no sooner than this RFC 3339 time");
  submit->add_option("--max-attempts", max_attempts, "attempts before failing");
  submit->add_option("--timeout-ms", timeout_ms, "per-attempt timeout");
  submit->add_option("--key", spec.key, "idempotency key");
  submit->add_option("--concurrency-key", spec.concurrency_key,
                     "tasks sharing it run in submit order, --concurrency-limit at a time");
  submit->add_option("--concurrency-limit", spec.concurrency_limit,
                     "the key's limit (default: the queue's key_concurrency, 1)");
  submit->add_option("--label", labels, "k=v (repeatable)");
  submit->add_option("--resources", resources,
                     "what an attempt holds on its worker, e.g. cpu=2000,memory_mb=4096,gpu=1");
  submit->add_option("--require", require,
                     "worker labels: k=v, k!=v, k (set) or !k (not set); repeatable");
  submit->add_option("--prefer", prefer, "soft: [WEIGHT:]k=v etc.; repeatable");
  submit->add_option("--affinity-key", spec.placement.affinity_key,
                     "tasks with the same key run on the same worker while it lives");
  submit->add_flag("--broadcast", broadcast,
                   "one copy per live worker that could run it (prints each copy's id)");
  submit->add_flag("--wait", wait, "wait for the task to finish and print it");
  submit->add_option("--wait-timeout-ms", wait_timeout_ms, "how long --wait waits");
  submit->footer("After --, the command to run: dray submit --wait -- echo hello");
  runs.push_back([&]() -> int {
    if (!submit->parsed()) return -1;
    if (!command.empty()) {
      json::array a;
      for (const std::string& c : command) a.push_back(json::string(c));
      spec.payload = JsonText(json::object{{"argv", std::move(a)}});
      if (spec.type.empty()) spec.type = "exec";
    }
    if (spec.type.empty()) {
      std::fprintf(stderr, "dray: submit needs a TYPE or a command after --\n");
      return 2;
    }
    if (!payload.empty()) {
      auto v = ParseJson(payload);
      if (!v.ok()) return Fail(InvalidArgument("--payload is not JSON"));
      spec.payload = JsonText(*v);
    }
    if (delay_ms >= 0) spec.delay_ms = delay_ms;
    if (timeout_ms >= 0) spec.timeout_ms = timeout_ms;
    if (max_attempts > 0) spec.max_attempts = max_attempts;
    if (!run_at.empty()) {
      auto t = ParseRfc3339(run_at);
      if (!t) return Fail(InvalidArgument("--run-at is not an RFC 3339 time"));
      spec.run_at = *t;
    }
    for (const std::string& l : labels) {
      auto eq = l.find('=');
      if (eq == std::string::npos) return Fail(InvalidArgument("--label wants k=v"));
      spec.labels[l.substr(0, eq)] = l.substr(eq + 1);
    }
    std::map<std::string, std::int64_t> amounts;
    if (Status st = ParseAmounts(resources, "--resources", &amounts); !st.ok()) return Fail(st);
    for (const auto& [name, n] : amounts) {
      if (n > 0) spec.placement.resources[name] = n;
    }
    auto selector = [](const std::string& text, const char* flag) -> StatusOr<LabelSelector> {
      Placement p;
      bool known = false;
      Status s = DecodePlacementField("require", json::array{json::string(text)}, flag, Limits{},
                                      &p, &known);
      if (!s.ok()) return s;
      return p.require.front();
    };
    for (const std::string& r : require) {
      auto sel = selector(r, "--require");
      if (!sel.ok()) return Fail(sel.status());
      spec.placement.require.push_back(std::move(*sel));
    }
    for (const std::string& p : prefer) {
      std::int32_t weight = 1;
      std::string text = p;
      if (auto colon = p.find(':'); colon != std::string::npos && colon > 0 &&
                                    p.find_first_not_of("0123456789") == colon) {
        weight = static_cast<std::int32_t>(std::min(1000L, std::strtol(p.c_str(), nullptr, 10)));
        text = p.substr(colon + 1);
      }
      auto sel = selector(text, "--prefer");
      if (!sel.ok()) return Fail(sel.status());
      spec.placement.prefer.push_back(LabelPreference{std::move(*sel), std::max(weight, 1)});
    }
    spec.ns = common.ns;
    auto client = Connect(common);
    if (broadcast) {
      auto copies = client->Broadcast(spec);
      if (!copies.ok()) return Fail(copies.status());
      for (const BroadcastCopy& c : *copies) {
        std::printf("%s  %s  shard %d/%zu\n", c.id.c_str(), c.worker.c_str(), c.shard_index,
                    copies->size());
      }
      if (!wait) return 0;
      int rc = 0;
      for (const BroadcastCopy& c : *copies) {
        auto t = client->Wait(c.id, std::chrono::milliseconds(wait_timeout_ms));
        if (!t.ok()) return Fail(t.status());
        PrintTask(*t, common.json_out);
        if (t->state != TaskState::kSucceeded) rc = 1;
      }
      return rc;
    }
    auto r = client->Submit(spec);
    if (!r.ok()) return Fail(r.status());
    if (!wait) {
      if (common.json_out) {
        std::printf("{\"id\":\"%s\",\"created\":%s}\n", r->id.c_str(), r->created ? "true" : "false");
      } else {
        std::printf("%s\n", r->id.c_str());
      }
      return 0;
    }
    auto t = client->Wait(r->id, std::chrono::milliseconds(wait_timeout_ms));
    if (!t.ok()) return Fail(t.status());
    PrintTask(*t, common.json_out);
    return t->state == TaskState::kSucceeded ? 0 : 1;
  });

  // get / wait / cancel / retry
  std::string id;
  CLI::App* get = app.add_subcommand("get", "Show a task");
  CLI::App* waitc = app.add_subcommand("wait", "Wait for a task to finish; exit 0 if it succeeded");
  CLI::App* cancel = app.add_subcommand("cancel", "Cancel a task");
  CLI::App* retry = app.add_subcommand("retry", "Run a failed or cancelled task again");
  for (CLI::App* c : {get, waitc, cancel, retry}) {
    add_common(c);
    c->add_option("id", id, "task id")->required();
  }
  std::int64_t wait_ms = 3'600'000;
  waitc->add_option("--timeout-ms", wait_ms, "give up after this long (exit 2)");
  runs.push_back([&]() -> int {
    if (!get->parsed() && !waitc->parsed() && !cancel->parsed() && !retry->parsed()) return -1;
    auto client = Connect(common);
    StatusOr<Task> t = get->parsed()      ? client->Get(id)
                       : waitc->parsed()  ? client->Wait(id, std::chrono::milliseconds(wait_ms))
                       : cancel->parsed() ? client->Cancel(id)
                                          : client->Retry(id);
    if (!t.ok()) return Fail(t.status());
    PrintTask(*t, common.json_out);
    if (waitc->parsed()) return t->state == TaskState::kSucceeded ? 0 : 1;
    return 0;
  });

  // list
  ListFilter filter;
  std::string state;
  bool oldest_first = false;
  CLI::App* list = app.add_subcommand("list", "List tasks, newest first");
  add_common(list);
  list->add_option("--queue", filter.queue, "only this queue");
  list->add_option("--state", state, "only this state");
  list->add_option("--type", filter.type, "only this type");
  list->add_option("--limit", filter.limit, "at most this many")->capture_default_str();
  list->add_option("--cursor", filter.cursor, "continue after this cursor");
  list->add_flag("--oldest-first", oldest_first, "oldest first");
  runs.push_back([&]() -> int {
    if (!list->parsed()) return -1;
    if (!state.empty()) {
      filter.state = ParseTaskState(state);
      if (!filter.state) return Fail(InvalidArgument("unknown state " + state));
    }
    filter.newest_first = !oldest_first;
    auto client = Connect(common);
    auto r = client->List(filter);
    if (!r.ok()) return Fail(r.status());
    if (common.json_out) {
      json::array a;
      for (const Task& t : r->tasks) a.push_back(EncodeTask(t));
      json::object o{{"tasks", std::move(a)},
                     {"next_cursor", r->next_cursor.empty() ? json::value(nullptr) : json::value(r->next_cursor)}};
      std::printf("%s\n", JsonText(o).c_str());
      return 0;
    }
    std::printf("%-36s  %-10s  %-12s  %-16s  %-8s  %s\n", "ID", "STATE", "QUEUE", "TYPE", "ATTEMPTS",
                "CREATED");
    for (const Task& t : r->tasks) {
      std::printf("%-36s  %-10s  %-12s  %-16s  %-8s  %s\n", t.id.c_str(),
                  std::string(TaskStateName(t.state)).c_str(), t.queue.c_str(), t.type.c_str(),
                  (std::to_string(t.attempts) + "/" + std::to_string(t.max_attempts)).c_str(),
                  CliTime(t.created_at).c_str());
    }
    if (!r->next_cursor.empty()) std::printf("more: --cursor %s\n", r->next_cursor.c_str());
    return 0;
  });

  // queues
  CLI::App* queues = app.add_subcommand("queues", "List queues, show one, or change its settings");
  add_common(queues);
  std::string qname;
  CLI::App* qget = queues->add_subcommand("get", "Show one queue");
  qget->add_option("name", qname)->required();
  CLI::App* qset = queues->add_subcommand("set", "Change a queue's settings");
  qset->add_option("name", qname)->required();
  add_common(qget);  // also after the subcommand: `dray queues get q --json`
  add_common(qset);
  std::string paused;
  std::int64_t q_lease_ms = 0;
  int q_attempts = 0;
  std::optional<int> q_concurrency, q_key_concurrency, q_burst, q_weight;
  std::optional<double> q_rate;
  qset->add_option("--paused", paused, "true or false");
  qset->add_option("--lease-ms", q_lease_ms, "default lease duration");
  qset->add_option("--max-attempts", q_attempts, "default attempts");
  qset->add_option("--concurrency", q_concurrency, "tasks running at once, all workers; 0 = no limit");
  qset->add_option("--key-concurrency", q_key_concurrency, "default limit per concurrency key");
  qset->add_option("--rate", q_rate, "task starts per second; 0 = no limit");
  qset->add_option("--burst", q_burst, "starts allowed at once; 0 = ceil(rate)");
  qset->add_option("--weight", q_weight, "share among the queues a worker leases from");
  runs.push_back([&]() -> int {
    if (!queues->parsed()) return -1;
    auto client = Connect(common);
    std::vector<QueueInfo> shown;
    if (qset->parsed()) {
      json::object patch;
      if (!paused.empty()) {
        if (paused != "true" && paused != "false") return Fail(InvalidArgument("--paused is true or false"));
        patch["paused"] = paused == "true";
      }
      if (q_lease_ms) patch["lease_ms"] = q_lease_ms;
      if (q_attempts) patch["max_attempts"] = q_attempts;
      if (q_concurrency) patch["concurrency"] = *q_concurrency;
      if (q_key_concurrency) patch["key_concurrency"] = *q_key_concurrency;
      if (q_rate) patch["rate"] = *q_rate;
      if (q_burst) patch["burst"] = *q_burst;
      if (q_weight) patch["weight"] = *q_weight;
      auto r = client->PatchQueue(qname, JsonText(patch));
      if (!r.ok()) return Fail(r.status());
      shown.push_back(*r);
    } else if (qget->parsed()) {
      auto r = client->GetQueue(qname);
      if (!r.ok()) return Fail(r.status());
      shown.push_back(*r);
    } else {
      auto r = client->Queues();
      if (!r.ok()) return Fail(r.status());
      shown = *r;
    }
    if (common.json_out) {
      auto body = client->Call("GET", qget->parsed() || qset->parsed() ? "/v1/queues/" + qname : "/v1/queues");
      if (!body.ok()) return Fail(body.status());
      std::printf("%s\n", body->c_str());
      return 0;
    }
    std::printf("%-16s  %-6s  %9s  %9s  %5s  %7s  %9s  %6s  %9s\n", "QUEUE", "PAUSED", "SCHEDULED",
                "BLOCKED", "READY", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED");
    for (const QueueInfo& q : shown) {
      auto n = [&](TaskState s) {
        auto it = q.counts.find(s);
        return static_cast<long long>(it == q.counts.end() ? 0 : it->second);
      };
      std::printf("%-16s  %-6s  %9lld  %9lld  %5lld  %7lld  %9lld  %6lld  %9lld\n", q.name.c_str(),
                  q.settings.paused ? "yes" : "no", n(TaskState::kScheduled), n(TaskState::kBlocked),
                  n(TaskState::kReady), n(TaskState::kRunning), n(TaskState::kSucceeded),
                  n(TaskState::kFailed), n(TaskState::kCancelled));
    }
    if (shown.size() == 1) {  // one queue: its limits too
      const QueueSettings& s = shown[0].settings;
      std::printf("limits: concurrency %s, per key %d, rate %s, weight %d\n",
                  s.concurrency ? std::to_string(s.concurrency).c_str() : "none",
                  s.key_concurrency,
                  s.rate > 0 ? (FormatDouble(s.rate) + "/s burst " +
                                std::to_string(static_cast<long long>(s.effective_burst())))
                                   .c_str()
                             : "none",
                  s.weight);
    }
    return 0;
  });

  // workflow
  CLI::App* workflow = app.add_subcommand("workflow", "Submit, show, list or cancel workflows");
  add_common(workflow);
  std::string wf_file, wf_id, wf_state, wf_name, wf_cursor;
  bool wf_wait = false;
  std::int64_t wf_wait_ms = 3'600'000;
  std::size_t wf_limit = 100;
  bool wf_yaml = false;
  CLI::App* wsubmit =
      workflow->add_subcommand("submit", "Submit a workflow from a JSON or YAML file ('-': stdin)");
  wsubmit->add_option("file", wf_file, "the body of POST /v1/workflows; *.yaml/*.yml: YAML")
      ->required();
  wsubmit->add_flag("--yaml", wf_yaml, "read the file (or stdin) as YAML whatever its name");
  wsubmit->add_flag("--wait", wf_wait, "wait for it to finish; exit 0 if it succeeded");
  wsubmit->add_option("--wait-timeout-ms", wf_wait_ms, "how long --wait waits");
  CLI::App* wget = workflow->add_subcommand("get", "Show a workflow and its tasks");
  CLI::App* wwait = workflow->add_subcommand("wait", "Wait for a workflow; exit 0 if it succeeded");
  CLI::App* wcancel = workflow->add_subcommand("cancel", "Cancel every unfinished task of a workflow");
  for (CLI::App* c : {wget, wwait, wcancel}) c->add_option("id", wf_id, "workflow id")->required();
  wwait->add_option("--timeout-ms", wf_wait_ms, "give up after this long (exit 2)");
  CLI::App* wlist = workflow->add_subcommand("list", "List workflows, newest first");
  wlist->add_option("--state", wf_state, "running, succeeded, failed or cancelled");
  wlist->add_option("--name", wf_name, "only this name");
  wlist->add_option("--limit", wf_limit, "at most this many")->capture_default_str();
  wlist->add_option("--cursor", wf_cursor, "continue after this cursor");
  for (CLI::App* c : {wsubmit, wget, wwait, wcancel, wlist}) add_common(c);
  workflow->require_subcommand(1);
  runs.push_back([&]() -> int {
    if (!workflow->parsed()) return -1;
    auto client = Connect(common);
    auto show = [&](const std::string& wid, bool wait_for_end) -> int {
      auto info = wait_for_end ? client->WaitWorkflow(wid, std::chrono::milliseconds(wf_wait_ms))
                       : client->GetWorkflow(wid);
      if (!info.ok()) return Fail(info.status());
      if (common.json_out) {
        auto body = client->Call("GET", "/v1/workflows/" + wid);
        if (!body.ok()) return Fail(body.status());
        std::printf("%s\n", body->c_str());
      } else {
        PrintWorkflow(*info);
      }
      if (!wait_for_end) return 0;
      return info->workflow.state == WorkflowState::kSucceeded ? 0 : 1;
    };
    if (wsubmit->parsed()) {
      auto text = ReadJsonBody(wf_file, wf_yaml);
      if (!text.ok()) return Fail(text.status());
      auto body = client->Call("POST", "/v1/workflows", *text);
      if (!body.ok()) return Fail(body.status());
      if (!wf_wait) {
        if (common.json_out) {
          std::printf("%s\n", body->c_str());
        } else {
          json::value v = json::parse(*body);
          std::printf("%s\n", std::string(v.at("workflow").at("id").as_string()).c_str());
        }
        return 0;
      }
      return show(std::string(json::parse(*body).at("workflow").at("id").as_string()), true);
    }
    if (wget->parsed() || wwait->parsed()) return show(wf_id, wwait->parsed());
    if (wcancel->parsed()) {
      auto w = client->CancelWorkflow(wf_id);
      if (!w.ok()) return Fail(w.status());
      std::printf("%s %s%s\n", w->id.c_str(), std::string(WorkflowStateName(w->state)).c_str(),
                  w->state == WorkflowState::kRunning ? " (cancel requested)" : "");
      return 0;
    }
    WorkflowFilter f;
    f.name = wf_name;
    f.limit = wf_limit;
    f.cursor = wf_cursor;
    if (!wf_state.empty()) {
      f.state = ParseWorkflowState(wf_state);
      if (!f.state) return Fail(InvalidArgument("unknown workflow state " + wf_state));
    }
    auto page = client->ListWorkflows(f);
    if (!page.ok()) return Fail(page.status());
    std::printf("%-36s  %-10s  %6s  %-24s  %s\n", "ID", "STATE", "TASKS", "CREATED", "NAME");
    for (const Workflow& w : page->workflows) {
      std::printf("%-36s  %-10s  %6d  %-24s  %s\n", w.id.c_str(),
                  std::string(WorkflowStateName(w.state)).c_str(), w.tasks,
                  CliTime(w.created_at).c_str(), w.name.c_str());
    }
    if (!page->next_cursor.empty()) std::printf("more: --cursor %s\n", page->next_cursor.c_str());
    return 0;
  });

  runs.push_back(AddScheduleCommand(&app, &common));
  runs.push_back(AddEventCommand(&app, &common));
  runs.push_back(AddTriggerCommand(&app, &common));
  runs.push_back(AddWatchCommand(&app, &common));
  runs.push_back(AddWorkersCommand(&app, &common));

  // worker
  ExecWorkerOptions wo;
  bool exec = false;
  CLI::App* worker = app.add_subcommand("worker", "Run a worker");
  add_common(worker);
  worker->add_flag("--exec", exec, "run command tasks (payload {\"argv\": [...]})");
  worker->add_option("--queues", wo.queues, "comma-separated queues")->capture_default_str();
  worker->add_option("--concurrency", wo.concurrency, "tasks at once")->capture_default_str();
  worker->add_option("--name", wo.name, "worker name (default host-pid)");
  bool no_register = false;
  worker->add_flag("--no-register", no_register,
                   "do not register capacity and labels (runs only tasks that need neither)");
  worker->add_option("--capacity", wo.capacity,
                     "resources to advertise over the machine's, e.g. cpu=4000,memory_mb=8192,licenses=3");
  worker->add_option("--labels", wo.labels, "labels, e.g. zone=a,arch=arm64");
  worker->add_option("--gpus", wo.gpus, "GPU device ids to hand out, e.g. 0,1 (default: those found)");
  worker->add_option("--limits", wo.limits,
                     "how task requests are enforced: auto, cgroup2, cgroup1, rlimit or none")
      ->capture_default_str();
  runs.push_back([&]() -> int {
    if (!worker->parsed()) return -1;
    if (!exec) {
      std::fprintf(stderr, "dray worker: only --exec workers exist in the CLI; "
                           "write others with the SDK (include/dray/worker.h)\n");
      return 2;
    }
    wo.server = common.server;
    wo.ns = common.ns;
    wo.register_worker = !no_register;
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
    spdlog::info("command worker on {} serving {} with {} slots", wo.server, wo.queues, wo.concurrency);
    if (wo.register_worker) {
      std::string capacity;
      for (const auto& [k, v] : w.registration().capacity) {
        capacity += (capacity.empty() ? "" : ", ") + k + "=" + std::to_string(v);
      }
      spdlog::info("registering with {}", capacity);
    }
    spdlog::info("task limits: {}", w.limits_description());
    Status s = w.Run();
    done = true;
    pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter if Run ended on its own
    waiter.join();
    if (!s.ok()) return Fail(s);
    auto st = w.stats();
    spdlog::info("worker stopped: {} leased, {} succeeded, {} failed", st.leased, st.succeeded, st.failed);
    return 0;
  });

  // `dray submit [flags] -- argv...`: everything after "--" is the command,
  // taken out before parsing so that it never lands in TYPE.
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "submit") {
    auto dash = std::find(args.begin(), args.end(), "--");
    if (dash != args.end()) {
      command.assign(dash + 1, args.end());
      args.erase(dash, args.end());
    }
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& r : runs) {
    int rc = r();
    if (rc >= 0) return rc;
  }
  return 0;
}

}  // namespace dray
