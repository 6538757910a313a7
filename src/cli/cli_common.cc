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

void PrintTask(const Task& t, bool as_json) {
  if (as_json) {
    std::printf("%s\n", TaskToJson(t).c_str());
    return;
  }
  std::printf("id:         %s\n", t.id.c_str());
  std::printf("type:       %s\n", t.type.c_str());
  std::printf("queue:      %s\n", t.queue.c_str());
  std::printf("state:      %s%s\n", std::string(TaskStateName(t.state)).c_str(),
              t.cancel_requested ? " (cancel requested)" : "");
  if (!t.wait_reason.empty()) {
    std::printf("waiting:    %s (%s)\n", t.wait_reason.c_str(), t.wait_detail.c_str());
  }
  if (!t.concurrency_key.empty()) std::printf("key:        %s\n", t.concurrency_key.c_str());
  if (!t.placement.empty()) {
    // The placement fields as the API writes them, one line.
    std::printf("placement:  {%s}\n", PlacementToJson(t.placement).c_str());
  }
  std::printf("attempts:   %d of %d\n", t.attempts, t.max_attempts);
  std::printf("payload:    %s\n", t.payload.c_str());
  if (!t.result.empty()) std::printf("result:     %s\n", t.result.c_str());
  if (!t.error.empty()) std::printf("error:      %s\n", t.error.c_str());
  std::printf("created:    %s\n", CliTime(t.created_at).c_str());
  if (t.finished_at) std::printf("finished:   %s\n", CliTime(t.finished_at).c_str());
  for (const Attempt& a : t.history) {
    std::printf("attempt %d:  %s on %s, %s .. %s%s%s\n", a.number,
                std::string(AttemptOutcomeName(a.outcome)).c_str(), a.worker.c_str(),
                CliTime(a.started_at).c_str(), CliTime(a.ended_at).c_str(), a.error.empty() ? "" : ": ",
                a.error.c_str());
  }
}

}  // namespace dray
