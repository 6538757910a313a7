#include "cli/cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "cli/event_command.h"
#include "cli/list_command.h"
#include "cli/queues_command.h"
#include "cli/schedule_command.h"
#include "cli/server_command.h"
#include "cli/submit_command.h"
#include "cli/task_command.h"
#include "cli/worker_command.h"
#include "cli/workers_command.h"
#include "cli/workflow_command.h"

namespace dray {

int RunCli(int argc, char** argv, const BuildInfo& build) {
  // Build spdlog's registry on this thread before any other thread logs: the
  // library is not built for ThreadSanitizer, which then cannot see that its
  // lazy initialisation is synchronised.
  spdlog::set_level(spdlog::level::info);
  CLI::App app{"dray: a durable task scheduler and job server", "dray"};
  app.set_version_flag("--version", build.Line());
  app.require_subcommand(1);
  // Set before the commands are added: --server shows it as its default.
  CliCommon common;
  if (const char* env = std::getenv("DRAY_SERVER")) common.server = env;
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::vector<std::string> command = TakeSubmitCommand(&args);

  // In the order `dray --help` lists them; each action returns -1 unless
  // its command was chosen.
  std::function<int()> server_run;
  AddServerCommand(&app, build, &server_run);
  const std::function<int()> runs[] = {
      server_run,
      AddSubmitCommand(&app, &common, &command),
      AddTaskCommands(&app, &common),
      AddListCommand(&app, &common),
      AddQueuesCommand(&app, &common),
      AddWorkflowCommand(&app, &common),
      AddScheduleCommand(&app, &common),
      AddEventCommand(&app, &common),
      AddTriggerCommand(&app, &common),
      AddWatchCommand(&app, &common),
      AddWorkersCommand(&app, &common),
      AddWorkerCommand(&app, &common),
  };

  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (const auto& run : runs) {
    if (int rc = run(); rc >= 0) return rc;
  }
  return 0;
}

}  // namespace dray
