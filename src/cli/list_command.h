// `dray list`: tasks, newest first, a page at a time.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli_common.h"

namespace dray {

// Adds the subcommand to `app`; the returned action runs it when it was
// chosen (else returns -1). `common` must outlive the action.
std::function<int()> AddListCommand(CLI::App* app, CliCommon* common);

}  // namespace dray
