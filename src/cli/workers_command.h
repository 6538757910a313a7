// `dray workers`: the registered workers (docs/workers.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli_common.h"

namespace dray {

std::function<int()> AddWorkersCommand(CLI::App* app, CliCommon* common);

}  // namespace dray
