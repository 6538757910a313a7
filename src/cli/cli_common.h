// What the client subcommands of `dray` share: the connection flags, the
// error exit, and reading a request body from a JSON or YAML file.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "dray/client.h"
#include "dray/status.h"

namespace dray {

struct CliCommon {
  std::string server = "http://127.0.0.1:7070";
  std::string ns = "default";
  bool json_out = false;
};

// Adds --server, --namespace and --json to `cmd`.
void AddCommonFlags(CLI::App* cmd, CliCommon* common);

// A client for the flags; exits with 2 on a malformed address.
std::unique_ptr<Client> Connect(const CliCommon& c);

// Prints "dray: <status>" on stderr; returns the exit code 2.
int Fail(const Status& s);

// RFC 3339, or "-" for 0.
std::string CliTime(TimeMs t);

// The text of `file` ("-": stdin) as JSON: YAML converted when `yaml` or
// the name ends in .yaml or .yml; InvalidArgument naming the file when it
// is neither.
StatusOr<std::string> ReadJsonBody(const std::string& file, bool yaml);

}  // namespace dray
