#include "cli/cli_common.h"

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/yaml_json.h"
#include "core/json_codec.h"
#include "core/time_format.h"

namespace dray {

void AddCommonFlags(CLI::App* cmd, CliCommon* common) {
  cmd->add_option("--server", common->server, "server URL (env DRAY_SERVER)")->capture_default_str();
  cmd->add_option("--namespace", common->ns, "namespace")->capture_default_str();
  cmd->add_flag("--json", common->json_out, "print JSON");
}

std::unique_ptr<Client> Connect(const CliCommon& c) {
  ClientOptions o;
  o.server = c.server;
  o.ns = c.ns;
  auto client = Client::Create(o);
  if (!client.ok()) {
    std::fprintf(stderr, "dray: %s\n", client.status().message().c_str());
    std::exit(2);
  }
  return std::move(*client);
}

int Fail(const Status& s) {
  std::fprintf(stderr, "dray: %s\n", s.ToString().c_str());
  return 2;
}

std::string CliTime(TimeMs t) { return t ? FormatRfc3339(t) : "-"; }

StatusOr<std::string> ReadJsonBody(const std::string& file, bool yaml) {
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) return NotFound("cannot read " + file);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const auto ends_with = [&](std::string_view suffix) {
    return file.size() >= suffix.size() &&
           file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (yaml || ends_with(".yaml") || ends_with(".yml")) {
    auto converted = YamlToJson(text);
    if (!converted.ok()) return InvalidArgument(file + ": " + converted.status().message());
    text = std::move(*converted);
  }
  auto parsed = ParseJson(text);
  if (!parsed.ok()) return InvalidArgument(file + ": " + parsed.status().message());
  return text;
}

}  // namespace dray
