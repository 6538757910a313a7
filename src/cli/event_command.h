// `dray event emit|get` and `dray trigger add|list|get|pause|resume|rm`
// (docs/events.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli_common.h"

namespace dray {

// Add the subcommands to `app`; each returned action runs its subcommand
// when it was chosen (else returns -1). `common` must outlive them.
std::function<int()> AddEventCommand(CLI::App* app, CliCommon* common);
std::function<int()> AddTriggerCommand(CLI::App* app, CliCommon* common);

}  // namespace dray
