// `dray workflow submit|get|wait|cancel|list` (docs/workflows.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli_common.h"

namespace dray {

// Adds the subcommand to `app`; the returned action runs it when it was
// chosen (else returns -1). `wait`, and `submit --wait`, exit 0 only if
// the workflow succeeded. `common` must outlive the action.
std::function<int()> AddWorkflowCommand(CLI::App* app, CliCommon* common);

}  // namespace dray
