// `dray get|wait|cancel|retry ID`: one task, shown after the call.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli_common.h"

namespace dray {

// Adds the four subcommands to `app`; the returned action runs whichever
// was chosen (else returns -1). `wait` exits 0 only if the task succeeded.
// `common` must outlive the action.
std::function<int()> AddTaskCommands(CLI::App* app, CliCommon* common);

}  // namespace dray
