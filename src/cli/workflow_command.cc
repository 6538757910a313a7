#include "cli/workflow_command.h"

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace json = boost::json;

namespace dray {

namespace {

struct WorkflowFlags {
  std::string file, id, state, name, cursor;
  bool wait = false;
  std::int64_t wait_ms = 3'600'000;
  std::size_t limit = 100;
  bool yaml = false;
};

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

// Shows workflow `id`, after it ended when `wait_for_end` (exit 0 only if
// it succeeded); with --json, as GET /v1/workflows/{id} answers.
int ShowWorkflow(Client& client, const WorkflowFlags& f, const CliCommon& common,
                 const std::string& id, bool wait_for_end) {
  auto info = wait_for_end ? client.WaitWorkflow(id, std::chrono::milliseconds(f.wait_ms))
                           : client.GetWorkflow(id);
  if (!info.ok()) return Fail(info.status());
  if (common.json_out) {
    auto body = client.Call("GET", "/v1/workflows/" + id);
    if (!body.ok()) return Fail(body.status());
    std::printf("%s\n", body->c_str());
  } else {
    PrintWorkflow(*info);
  }
  if (!wait_for_end) return 0;
  return info->workflow.state == WorkflowState::kSucceeded ? 0 : 1;
}

// Prints the new workflow's id (with --json, the whole answer), or with
// --wait shows it once it ended.
int SubmitWorkflow(Client& client, const WorkflowFlags& f, const CliCommon& common) {
  auto text = ReadJsonBody(f.file, f.yaml);
  if (!text.ok()) return Fail(text.status());
  auto body = client.Call("POST", "/v1/workflows", *text);
  if (!body.ok()) return Fail(body.status());
  const auto id = [&] { return std::string(json::parse(*body).at("workflow").at("id").as_string()); };
  if (f.wait) return ShowWorkflow(client, f, common, id(), true);
  std::printf("%s\n", common.json_out ? body->c_str() : id().c_str());
  return 0;
}

int ListWorkflows(Client& client, const WorkflowFlags& f) {
  WorkflowFilter filter;
  filter.name = f.name;
  filter.limit = f.limit;
  filter.cursor = f.cursor;
  if (!f.state.empty()) {
    filter.state = ParseWorkflowState(f.state);
    if (!filter.state) return Fail(InvalidArgument("unknown workflow state " + f.state));
  }
  auto page = client.ListWorkflows(filter);
  if (!page.ok()) return Fail(page.status());
  std::printf("%-36s  %-10s  %6s  %-24s  %s\n", "ID", "STATE", "TASKS", "CREATED", "NAME");
  for (const Workflow& w : page->workflows) {
    std::printf("%-36s  %-10s  %6d  %-24s  %s\n", w.id.c_str(),
                std::string(WorkflowStateName(w.state)).c_str(), w.tasks,
                CliTime(w.created_at).c_str(), w.name.c_str());
  }
  if (!page->next_cursor.empty()) std::printf("more: --cursor %s\n", page->next_cursor.c_str());
  return 0;
}

}  // namespace

std::function<int()> AddWorkflowCommand(CLI::App* app, CliCommon* common) {
  auto f = std::make_shared<WorkflowFlags>();
  CLI::App* workflow = app->add_subcommand("workflow", "Submit, show, list or cancel workflows");
  AddCommonFlags(workflow, common);
  CLI::App* submit =
      workflow->add_subcommand("submit", "Submit a workflow from a JSON or YAML file ('-': stdin)");
  submit->add_option("file", f->file, "the body of POST /v1/workflows; *.yaml/*.yml: YAML")->required();
  submit->add_flag("--yaml", f->yaml, "read the file (or stdin) as YAML whatever its name");
  submit->add_flag("--wait", f->wait, "wait for it to finish; exit 0 if it succeeded");
  submit->add_option("--wait-timeout-ms", f->wait_ms, "how long --wait waits");
  CLI::App* get = workflow->add_subcommand("get", "Show a workflow and its tasks");
  CLI::App* wait = workflow->add_subcommand("wait", "Wait for a workflow; exit 0 if it succeeded");
  CLI::App* cancel = workflow->add_subcommand("cancel", "Cancel every unfinished task of a workflow");
  for (CLI::App* c : {get, wait, cancel}) c->add_option("id", f->id, "workflow id")->required();
  wait->add_option("--timeout-ms", f->wait_ms, "give up after this long (exit 2)");
  CLI::App* list = workflow->add_subcommand("list", "List workflows, newest first");
  list->add_option("--state", f->state, "running, succeeded, failed or cancelled");
  list->add_option("--name", f->name, "only this name");
  list->add_option("--limit", f->limit, "at most this many")->capture_default_str();
  list->add_option("--cursor", f->cursor, "continue after this cursor");
  for (CLI::App* c : {submit, get, wait, cancel, list}) AddCommonFlags(c, common);
  workflow->require_subcommand(1);
  return [=]() -> int {
    if (!workflow->parsed()) return -1;
    auto client = Connect(*common);
    if (submit->parsed()) return SubmitWorkflow(*client, *f, *common);
    if (get->parsed() || wait->parsed()) return ShowWorkflow(*client, *f, *common, f->id, wait->parsed());
    if (cancel->parsed()) {
      auto w = client->CancelWorkflow(f->id);
      if (!w.ok()) return Fail(w.status());
      std::printf("%s %s%s\n", w->id.c_str(), std::string(WorkflowStateName(w->state)).c_str(),
                  w->state == WorkflowState::kRunning ? " (cancel requested)" : "");
      return 0;
    }
    return ListWorkflows(*client, *f);
  };
}

}  // namespace dray
