// `dray submit [TYPE] [flags] [-- command args...]`: one task, or with
// --broadcast one copy per live worker that could run it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cli/cli_common.h"

namespace dray {

// Adds the subcommand to `app`; the returned action runs it when it was
// chosen (else returns -1). `*command` is the command given after `--`
// (TakeSubmitCommand), set before parsing: when not empty it becomes the
// payload {"argv": [...]} of a task whose type defaults to "exec".
// `common` and `command` must outlive the action.
std::function<int()> AddSubmitCommand(CLI::App* app, CliCommon* common,
                                      const std::vector<std::string>* command);

// `args` is argv without the program name. For `submit ... -- argv...`,
// removes the "--" and all after it from `args` and returns what followed,
// so that CLI11 never takes the command for TYPE; for anything else, returns
// nothing and leaves `args` as it was.
std::vector<std::string> TakeSubmitCommand(std::vector<std::string>* args);

}  // namespace dray
