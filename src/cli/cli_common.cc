#include "cli/cli_common.h"

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

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

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Status ParsePairs(const std::string& text, std::string_view flag,
                  std::map<std::string, std::string>* into) {
  for (const std::string& item : SplitComma(text)) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument(std::string(flag) + ": '" + item + "' is not name=value");
    }
    (*into)[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return Status::Ok();
}

Status ParseAmounts(const std::string& text, std::string_view flag,
                    std::map<std::string, std::int64_t>* into) {
  std::map<std::string, std::string> pairs;
  DRAY_RETURN_IF_ERROR(ParsePairs(text, flag, &pairs));
  for (const auto& [k, v] : pairs) {
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || n < 0) {
      return InvalidArgument(std::string(flag) + ": '" + k + "=" + v + "' needs a whole number");
    }
    (*into)[k] = n;
  }
  return Status::Ok();
}

}  // namespace dray
