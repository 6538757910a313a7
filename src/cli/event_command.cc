#include "cli/event_command.h"

#include <boost/json.hpp>
#include <cstdio>
#include <memory>

#include "core/json_codec.h"
#include "core/json_writer.h"

namespace json = boost::json;

namespace dray {

namespace {

void PrintEvent(const Event& e, bool duplicate) {
  std::printf("id:         %s%s\n", e.id.c_str(), duplicate ? " (a duplicate: as first recorded)" : "");
  std::printf("name:       %s\n", e.name.c_str());
  std::printf("created:    %s\n", CliTime(e.created_at).c_str());
  std::printf("payload:    %s\n", e.payload.c_str());
  for (std::size_t i = 0; i < e.tasks.size(); ++i) {
    std::printf("%s%s\n", i == 0 ? "tasks:      " : "            ", e.tasks[i].c_str());
  }
  if (e.tasks.empty()) std::printf("tasks:      none (no trigger matched)\n");
}

std::string On(const TriggerSpec& s) {
  if (!s.on_task) {
    std::string on = "event " + s.event;
    for (const auto& [path, value] : s.match) on += " " + path + "=" + value;
    return on;
  }
  std::string states;
  for (TaskState st : s.task_states) states += (states.empty() ? "" : ",") + std::string(TaskStateName(st));
  std::string on = "task";
  if (!s.task_queue.empty()) on += " queue=" + s.task_queue;
  if (!s.task_type.empty()) on += " type=" + s.task_type;
  return on + " " + states;
}

void PrintTrigger(const Trigger& t) {
  const TriggerSpec& s = t.spec;
  std::printf("id:         %s\n", s.id.c_str());
  if (!s.name.empty()) std::printf("name:       %s\n", s.name.c_str());
  std::printf("on:         %s\n", On(s).c_str());
  std::printf("task:       %s on queue %s\n", s.task.type.c_str(), s.task.queue.c_str());
  std::printf("state:      %s\n", s.paused ? "paused" : "active");
  std::printf("fired:      %lld since the server started\n", static_cast<long long>(t.fired));
}

}  // namespace

std::function<int()> AddEventCommand(CLI::App* app, CliCommon* common) {
  struct Flags {
    std::string name, id, payload = "null";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app->add_subcommand("event", "Emit or show events");
  AddCommonFlags(cmd, common);
  CLI::App* emit = cmd->add_subcommand("emit", "Record an event; its triggers submit their tasks");
  emit->add_option("name", f->name, "the event's name")->required();
  emit->add_option("--id", f->id, "de-duplication id: sent again, nothing fires twice");
  emit->add_option("--payload", f->payload, "JSON");
  CLI::App* get = cmd->add_subcommand("get", "Show an event and the tasks it fired");
  get->add_option("id", f->id, "event id")->required();
  for (CLI::App* c : {emit, get}) AddCommonFlags(c, common);
  cmd->require_subcommand(1);
  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    auto client = Connect(*common);
    if (get->parsed()) {
      auto e = client->GetEvent(f->id);
      if (!e.ok()) return Fail(e.status());
      if (common->json_out) {
        std::printf("%s\n", JsonText(EncodeEvent(*e)).c_str());
      } else {
        PrintEvent(*e, false);
      }
      return 0;
    }
    auto payload = ParseJson(f->payload);
    if (!payload.ok()) return Fail(InvalidArgument("--payload: " + payload.status().message()));
    EventSpec spec;
    spec.name = f->name;
    spec.id = f->id;
    spec.payload = JsonText(*payload);
    auto r = client->EmitEvent(spec);
    if (!r.ok()) return Fail(r.status());
    if (common->json_out) {
      json::object o = EncodeEvent(r->event);
      o["duplicate"] = r->duplicate;
      std::printf("%s\n", JsonText(o).c_str());
    } else {
      PrintEvent(r->event, r->duplicate);
    }
    return 0;
  };
}

std::function<int()> AddTriggerCommand(CLI::App* app, CliCommon* common) {
  struct Flags {
    TriggerSpec spec;
    std::string file, id, payload, cursor;
    std::vector<std::string> match, states;
    bool yaml = false;
    std::size_t limit = 100;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app->add_subcommand("trigger", "Add, show, list, pause, resume or remove triggers");
  AddCommonFlags(cmd, common);
  CLI::App* add = cmd->add_subcommand("add", "Create a trigger from flags or from a JSON/YAML file");
  add->add_option("--file", f->file, "the body of POST /v1/triggers ('-': stdin; *.yaml: YAML)");
  add->add_flag("--yaml", f->yaml, "read --file as YAML whatever its name");
  add->add_option("--id", f->spec.id, "its id (default: one is made)");
  add->add_option("--name", f->spec.name, "free text");
  add->add_option("--on-event", f->spec.event, "fire on events of this name");
  add->add_option("--match", f->match, "PATH=JSON the event's payload must hold (repeatable)");
  add->add_option("--on-queue", f->spec.task_queue, "fire on outcomes of tasks of this queue");
  add->add_option("--on-type", f->spec.task_type, "...of this type");
  add->add_option("--on-state", f->states, "...ending succeeded, failed or cancelled (repeatable)");
  add->add_option("--type", f->spec.task.type, "the task it submits: type");
  add->add_option("--queue", f->spec.task.queue, "its queue")->capture_default_str();
  add->add_option("--payload", f->payload, "its payload's input (JSON)");
  add->add_flag("--paused", f->spec.paused, "create it paused");
  CLI::App* list = cmd->add_subcommand("list", "List triggers by id");
  list->add_option("--limit", f->limit, "at most this many")->capture_default_str();
  list->add_option("--cursor", f->cursor, "continue after this cursor");
  CLI::App* get = cmd->add_subcommand("get", "Show a trigger");
  CLI::App* pause = cmd->add_subcommand("pause", "Stop a trigger firing");
  CLI::App* resume = cmd->add_subcommand("resume", "Fire again");
  CLI::App* rm = cmd->add_subcommand("rm", "Delete a trigger (its tasks stay)");
  for (CLI::App* c : {get, pause, resume, rm}) c->add_option("id", f->id, "trigger id")->required();
  for (CLI::App* c : {add, list, get, pause, resume, rm}) AddCommonFlags(c, common);
  cmd->require_subcommand(1);

  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    auto client = Connect(*common);
    auto show = [&](const StatusOr<Trigger>& t) -> int {
      if (!t.ok()) return Fail(t.status());
      if (common->json_out) {
        std::printf("%s\n", JsonText(EncodeTrigger(*t)).c_str());
      } else {
        PrintTrigger(*t);
      }
      return 0;
    };
    if (add->parsed()) {
      std::string body;
      if (!f->file.empty()) {
        auto text = ReadJsonBody(f->file, f->yaml);
        if (!text.ok()) return Fail(text.status());
        body = std::move(*text);
      } else {
        // Flags become the body, so that the server checks them as it
        // checks any other (and names the field at fault).
        json::object o;
        if (!f->spec.id.empty()) o["id"] = f->spec.id;
        if (!f->spec.name.empty()) o["name"] = f->spec.name;
        json::object on;
        if (!f->spec.event.empty()) {
          on["event"] = f->spec.event;
          json::object match;
          for (const std::string& m : f->match) {
            const auto eq = m.find('=');
            if (eq == std::string::npos) return Fail(InvalidArgument("--match takes PATH=JSON, not " + m));
            auto v = ParseJson(m.substr(eq + 1));
            match[m.substr(0, eq)] = v.ok() ? *v : json::value(m.substr(eq + 1));  // bare words are strings
          }
          if (!match.empty()) on["match"] = std::move(match);
        }
        if (!f->spec.task_queue.empty() || !f->spec.task_type.empty() || !f->states.empty()) {
          json::object task;
          if (!f->spec.task_queue.empty()) task["queue"] = f->spec.task_queue;
          if (!f->spec.task_type.empty()) task["type"] = f->spec.task_type;
          json::array states;
          for (const std::string& s : f->states) states.push_back(json::value(s));
          task["states"] = std::move(states);
          on["task"] = std::move(task);
        }
        o["on"] = std::move(on);
        json::object task{{"type", f->spec.task.type}, {"queue", f->spec.task.queue}};
        if (!f->payload.empty()) {
          auto p = ParseJson(f->payload);
          if (!p.ok()) return Fail(InvalidArgument("--payload: " + p.status().message()));
          task["payload"] = *p;
        }
        o["task"] = std::move(task);
        if (f->spec.paused) o["paused"] = true;
        body = JsonText(o);
      }
      auto answer = client->Call("POST", "/v1/triggers", body);
      if (!answer.ok()) return Fail(answer.status());
      return show(DecodeTrigger(json::parse(*answer)));
    }
    if (get->parsed()) return show(client->GetTrigger(f->id));
    if (pause->parsed()) return show(client->PauseTrigger(f->id));
    if (resume->parsed()) return show(client->ResumeTrigger(f->id));
    if (rm->parsed()) {
      Status s = client->DeleteTrigger(f->id);
      if (!s.ok()) return Fail(s);
      std::printf("%s deleted\n", f->id.c_str());
      return 0;
    }
    auto page = client->ListTriggers(f->limit, f->cursor);
    if (!page.ok()) return Fail(page.status());
    if (common->json_out) {
      json::array items;
      for (const Trigger& t : page->triggers) items.push_back(EncodeTrigger(t));
      std::printf("%s\n", JsonText(items).c_str());
      return 0;
    }
    std::printf("%-24s  %-40s  %-7s  %6s  %s\n", "ID", "ON", "STATE", "FIRED", "TASK");
    for (const Trigger& t : page->triggers) {
      std::printf("%-24s  %-40s  %-7s  %6lld  %s\n", t.spec.id.c_str(), On(t.spec).c_str(),
                  t.spec.paused ? "paused" : "active", static_cast<long long>(t.fired),
                  t.spec.task.type.c_str());
    }
    if (!page->next_cursor.empty()) std::printf("more: --cursor %s\n", page->next_cursor.c_str());
    return 0;
  };
}

std::function<int()> AddWatchCommand(CLI::App* app, CliCommon* common) {
  struct Flags {
    WatchFilter filter;
    std::string from;
    bool until_done = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app->add_subcommand("watch", "Print task changes as they are committed");
  AddCommonFlags(cmd, common);
  cmd->add_option("--queue", f->filter.queue, "only this queue");
  cmd->add_option("--workflow", f->filter.workflow, "only this workflow's tasks");
  cmd->add_option("--task", f->filter.task, "only this task (starting with its state)");
  cmd->add_option("--from", f->from, "resume after this event id");
  cmd->add_flag("--until-done", f->until_done,
                "with --task: stop when it finishes; exit 0 if it succeeded, else 1");
  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    if (f->until_done && f->filter.task.empty()) {
      return Fail(InvalidArgument("--until-done needs --task"));
    }
    auto client = Connect(*common);
    int rc = 0;
    Status s = client->Watch(
        f->filter,
        [&](const TaskChange& c) {
          if (c.reset) {
            std::printf("%s reset: %s\n", c.event_id.c_str(), c.reset_reason.c_str());
          } else if (common->json_out) {
            std::string line = "{\"event_id\":";
            AppendJsonString(c.event_id, &line);
            line += ",\"task\":" + JsonText(EncodeTask(c.task)) + "}";
            std::printf("%s\n", line.c_str());
          } else {
            const Task& t = c.task;
            std::printf("%s  %s  %s/%s  %-9s attempt %d/%d%s%s\n", CliTime(t.updated_at).c_str(),
                        t.id.c_str(), t.queue.c_str(), t.type.c_str(),
                        std::string(TaskStateName(t.state)).c_str(), t.attempts, t.max_attempts,
                        t.error.empty() ? "" : "  ", t.error.c_str());
          }
          std::fflush(stdout);
          if (f->until_done && !c.reset && IsTerminal(c.task.state)) {
            rc = c.task.state == TaskState::kSucceeded ? 0 : 1;
            return false;
          }
          return true;
        },
        f->from);
    if (!s.ok()) return Fail(s);
    return rc;
  };
}

}  // namespace dray
