// `dray schedule add|list|get|pause|resume|patch|rm` (docs/schedules.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli_common.h"

namespace dray {

// Adds the subcommand to `app`; the returned action runs it when it was
// chosen (else returns -1). `common` must outlive the action.
std::function<int()> AddScheduleCommand(CLI::App* app, CliCommon* common);

// "90s", "5m", "1h30m", "2d", "250ms" or a plain number of milliseconds.
StatusOr<std::int64_t> ParseDuration(std::string_view text);

}  // namespace dray
