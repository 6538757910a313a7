#include "cli/task_command.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace dray {

std::function<int()> AddTaskCommands(CLI::App* app, CliCommon* common) {
  struct Flags {
    std::string id;
    std::int64_t wait_ms = 3'600'000;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* get = app->add_subcommand("get", "Show a task");
  CLI::App* wait = app->add_subcommand("wait", "Wait for a task to finish; exit 0 if it succeeded");
  CLI::App* cancel = app->add_subcommand("cancel", "Cancel a task");
  CLI::App* retry = app->add_subcommand("retry", "Run a failed or cancelled task again");
  for (CLI::App* c : {get, wait, cancel, retry}) {
    AddCommonFlags(c, common);
    c->add_option("id", f->id, "task id")->required();
  }
  wait->add_option("--timeout-ms", f->wait_ms, "give up after this long (exit 2)");
  return [=]() -> int {
    if (!get->parsed() && !wait->parsed() && !cancel->parsed() && !retry->parsed()) return -1;
    auto client = Connect(*common);
    StatusOr<Task> t = get->parsed()      ? client->Get(f->id)
                       : wait->parsed()   ? client->Wait(f->id, std::chrono::milliseconds(f->wait_ms))
                       : cancel->parsed() ? client->Cancel(f->id)
                                          : client->Retry(f->id);
    if (!t.ok()) return Fail(t.status());
    PrintTask(*t, common->json_out);
    if (wait->parsed()) return t->state == TaskState::kSucceeded ? 0 : 1;
    return 0;
  };
}

}  // namespace dray
