// `dray event emit|get`, `dray trigger add|list|get|pause|resume|rm`
// (docs/events.md) and `dray watch` (docs/streams.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli_common.h"

namespace dray {

// Add the subcommands to `app`; each returned action runs its subcommand
// when it was chosen (else returns -1). `common` must outlive them.
std::function<int()> AddEventCommand(CLI::App* app, CliCommon* common);
std::function<int()> AddTriggerCommand(CLI::App* app, CliCommon* common);
// `dray watch`: task changes as they are committed (GET /v1/stream).
std::function<int()> AddWatchCommand(CLI::App* app, CliCommon* common);

}  // namespace dray
