#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace dray {

// `dray server`: flags for every ServerConfig field; `run` is set to the
// action to take when this subcommand was chosen.
void AddServerCommand(CLI::App* app, std::function<int()>* run);

}  // namespace dray
