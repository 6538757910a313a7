// What the client subcommands of `dray` share: the connection flags, the
// error exit, reading a request body from a JSON or YAML file, and printing
// a task.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> SplitComma(const std::string& s);

// A flag's "k=v,k2=v2" into `into`; InvalidArgument naming the flag.
Status ParsePairs(const std::string& text, std::string_view flag,
                  std::map<std::string, std::string>* into);

// A flag's "cpu=4000,memory_mb=512" (whole numbers, 0 or more) into
// `into`; InvalidArgument naming the flag.
Status ParseAmounts(const std::string& text, std::string_view flag,
                    std::map<std::string, std::int64_t>* into);

// RFC 3339, or "-" for 0.
std::string CliTime(TimeMs t);

// The text of `file` ("-": stdin) as JSON: YAML converted when `yaml` or
// the name ends in .yaml or .yml; InvalidArgument naming the file when it
// is neither.
StatusOr<std::string> ReadJsonBody(const std::string& file, bool yaml);

// Prints `t` on stdout: as the API writes it, on one line, when `as_json`;
// else one field a line, then one line per attempt.
void PrintTask(const Task& t, bool as_json);

}  // namespace dray
