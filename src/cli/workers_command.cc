#include "cli/workers_command.h"

#include <boost/json.hpp>
#include <cstdio>

#include "core/json_writer.h"

namespace json = boost::json;

namespace dray {

std::function<int()> AddWorkersCommand(CLI::App* app, CliCommon* common) {
  CLI::App* cmd = app->add_subcommand("workers", "List the registered workers: capacity, labels, tasks held");
  AddCommonFlags(cmd, common);
  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    auto client = Connect(*common);
    auto body = client->Call("GET", "/v1/workers");
    if (!body.ok()) return Fail(body.status());
    if (common->json_out) {
      std::printf("%s\n", body->c_str());
      return 0;
    }
    const json::value v = json::parse(*body);
    std::printf("%-24s  %-24s  %7s  %-32s  %-32s  %-20s  %s\n", "ID", "LAST SEEN", "RUNNING",
                "CAPACITY", "IN USE", "LABELS", "QUEUES");
    for (const json::value& w : v.at("workers").as_array()) {
      auto join = [](const json::value& x, const char* sep) {
        std::string out;
        if (x.is_object()) {
          for (const auto& [k, val] : x.as_object()) {
            out += (out.empty() ? "" : ",") + std::string(k) + sep +
                   (val.is_string() ? std::string(val.as_string()) : JsonText(val));
          }
        } else {
          for (const json::value& e : x.as_array()) {
            out += (out.empty() ? "" : ",") + std::string(e.as_string());
          }
        }
        return out.empty() ? std::string("-") : out;
      };
      std::printf("%-24s  %-24s  %7zu  %-32s  %-32s  %-20s  %s\n",
                  std::string(w.at("id").as_string()).c_str(),
                  std::string(w.at("last_seen").as_string()).c_str(),
                  w.at("running").as_array().size(), join(w.at("capacity"), "=").c_str(),
                  join(w.at("in_use"), "=").c_str(), join(w.at("labels"), "=").c_str(),
                  join(w.at("queues"), "").c_str());
    }
    return 0;
  };
}

}  // namespace dray
