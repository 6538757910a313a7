// The `dray` command line: server, worker and client subcommands.
#pragma once

#include "server/server_config.h"

namespace dray {

// Parses argv and runs the chosen subcommand; returns the process exit code.
// `build` is what `dray --version` prints and the server reports.
int RunCli(int argc, char** argv, const BuildInfo& build);

}  // namespace dray
