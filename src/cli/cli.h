// The `dray` command line: server, worker and client subcommands.
#pragma once

namespace dray {

// Parses argv and runs the chosen subcommand; returns the process exit code.
int RunCli(int argc, char** argv);

}  // namespace dray
