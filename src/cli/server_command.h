#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "server/server_config.h"

namespace dray {

// `dray server`: flags for every ServerConfig field; `run` is set to the
// action to take when this subcommand was chosen. The server reports `build`.
void AddServerCommand(CLI::App* app, const BuildInfo& build, std::function<int()>* run);

}  // namespace dray
