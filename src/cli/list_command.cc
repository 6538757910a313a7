#include "cli/list_command.h"

#include <boost/json.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "core/json_codec.h"
#include "core/json_writer.h"

namespace json = boost::json;

namespace dray {

namespace {

// The page as {"tasks": [...], "next_cursor"}, or a table and the cursor to
// go on with.
void PrintTaskList(const TaskList& page, bool as_json) {
  if (as_json) {
    json::array a;
    for (const Task& t : page.tasks) a.push_back(EncodeTask(t));
    json::object o{{"tasks", std::move(a)},
                   {"next_cursor", page.next_cursor.empty() ? json::value(nullptr)
                                                            : json::value(page.next_cursor)}};
    std::printf("%s\n", JsonText(o).c_str());
    return;
  }
  std::printf("%-36s  %-10s  %-12s  %-16s  %-8s  %s\n", "ID", "STATE", "QUEUE", "TYPE", "ATTEMPTS",
              "CREATED");
  for (const Task& t : page.tasks) {
    std::printf("%-36s  %-10s  %-12s  %-16s  %-8s  %s\n", t.id.c_str(),
                std::string(TaskStateName(t.state)).c_str(), t.queue.c_str(), t.type.c_str(),
                (std::to_string(t.attempts) + "/" + std::to_string(t.max_attempts)).c_str(),
                CliTime(t.created_at).c_str());
  }
  if (!page.next_cursor.empty()) std::printf("more: --cursor %s\n", page.next_cursor.c_str());
}

}  // namespace

std::function<int()> AddListCommand(CLI::App* app, CliCommon* common) {
  struct Flags {
    ListFilter filter;
    std::string state;
    bool oldest_first = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* list = app->add_subcommand("list", "List tasks, newest first");
  AddCommonFlags(list, common);
  list->add_option("--queue", f->filter.queue, "only this queue");
  list->add_option("--state", f->state, "only this state");
  list->add_option("--type", f->filter.type, "only this type");
  list->add_option("--limit", f->filter.limit, "at most this many")->capture_default_str();
  list->add_option("--cursor", f->filter.cursor, "continue after this cursor");
  list->add_flag("--oldest-first", f->oldest_first, "oldest first");
  return [=]() -> int {
    if (!list->parsed()) return -1;
    if (!f->state.empty()) {
      f->filter.state = ParseTaskState(f->state);
      if (!f->filter.state) return Fail(InvalidArgument("unknown state " + f->state));
    }
    f->filter.newest_first = !f->oldest_first;
    auto client = Connect(*common);
    auto r = client->List(f->filter);
    if (!r.ok()) return Fail(r.status());
    PrintTaskList(*r, common->json_out);
    return 0;
  };
}

}  // namespace dray
