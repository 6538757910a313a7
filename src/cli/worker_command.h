// `dray worker --exec`: a command worker in the foreground (docs/workers.md;
// `dray workers` lists the registered ones).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli_common.h"

namespace dray {

// Adds the subcommand to `app`; the returned action runs it when it was
// chosen (else returns -1) until SIGINT or SIGTERM: the first lets running
// commands finish, a second kills them. `common` must outlive the action.
std::function<int()> AddWorkerCommand(CLI::App* app, CliCommon* common);

}  // namespace dray
