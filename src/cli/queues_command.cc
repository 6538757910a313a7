#include "cli/queues_command.h"

#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json_writer.h"

namespace json = boost::json;

namespace dray {

namespace {

struct QueueFlags {
  std::string name, paused;
  std::int64_t lease_ms = 0;
  int max_attempts = 0;
  std::optional<int> concurrency, key_concurrency, burst, weight;
  std::optional<double> rate;
};

// The body of PATCH /v1/queues/{name}: the fields given.
StatusOr<std::string> QueuePatch(const QueueFlags& f) {
  json::object patch;
  if (!f.paused.empty()) {
    if (f.paused != "true" && f.paused != "false") return InvalidArgument("--paused is true or false");
    patch["paused"] = f.paused == "true";
  }
  if (f.lease_ms) patch["lease_ms"] = f.lease_ms;
  if (f.max_attempts) patch["max_attempts"] = f.max_attempts;
  if (f.concurrency) patch["concurrency"] = *f.concurrency;
  if (f.key_concurrency) patch["key_concurrency"] = *f.key_concurrency;
  if (f.rate) patch["rate"] = *f.rate;
  if (f.burst) patch["burst"] = *f.burst;
  if (f.weight) patch["weight"] = *f.weight;
  return JsonText(patch);
}

// One row of counts by state per queue; for one queue, its limits too.
void PrintQueues(const std::vector<QueueInfo>& shown) {
  std::printf("%-16s  %-6s  %9s  %9s  %5s  %7s  %9s  %6s  %9s\n", "QUEUE", "PAUSED", "SCHEDULED",
              "BLOCKED", "READY", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED");
  for (const QueueInfo& q : shown) {
    auto n = [&](TaskState s) {
      auto it = q.counts.find(s);
      return static_cast<long long>(it == q.counts.end() ? 0 : it->second);
    };
    std::printf("%-16s  %-6s  %9lld  %9lld  %5lld  %7lld  %9lld  %6lld  %9lld\n", q.name.c_str(),
                q.settings.paused ? "yes" : "no", n(TaskState::kScheduled), n(TaskState::kBlocked),
                n(TaskState::kReady), n(TaskState::kRunning), n(TaskState::kSucceeded),
                n(TaskState::kFailed), n(TaskState::kCancelled));
  }
  if (shown.size() != 1) return;
  const QueueSettings& s = shown[0].settings;
  std::printf("limits: concurrency %s, per key %d, rate %s, weight %d\n",
              s.concurrency ? std::to_string(s.concurrency).c_str() : "none",
              s.key_concurrency,
              s.rate > 0 ? (FormatDouble(s.rate) + "/s burst " +
                            std::to_string(static_cast<long long>(s.effective_burst())))
                               .c_str()
                         : "none",
              s.weight);
}

void AddQueueSetFlags(CLI::App* set, QueueFlags* f) {
  set->add_option("--paused", f->paused, "true or false");
  set->add_option("--lease-ms", f->lease_ms, "default lease duration");
  set->add_option("--max-attempts", f->max_attempts, "default attempts");
  set->add_option("--concurrency", f->concurrency, "tasks running at once, all workers; 0 = no limit");
  set->add_option("--key-concurrency", f->key_concurrency, "default limit per concurrency key");
  set->add_option("--rate", f->rate, "task starts per second; 0 = no limit");
  set->add_option("--burst", f->burst, "starts allowed at once; 0 = ceil(rate)");
  set->add_option("--weight", f->weight, "share among the queues a worker leases from");
}

}  // namespace

std::function<int()> AddQueuesCommand(CLI::App* app, CliCommon* common) {
  auto f = std::make_shared<QueueFlags>();
  CLI::App* queues = app->add_subcommand("queues", "List queues, show one, or change its settings");
  AddCommonFlags(queues, common);
  CLI::App* get = queues->add_subcommand("get", "Show one queue");
  get->add_option("name", f->name)->required();
  CLI::App* set = queues->add_subcommand("set", "Change a queue's settings");
  set->add_option("name", f->name)->required();
  AddCommonFlags(get, common);  // also after the subcommand: `dray queues get q --json`
  AddCommonFlags(set, common);
  AddQueueSetFlags(set, f.get());
  return [=]() -> int {
    if (!queues->parsed()) return -1;
    auto client = Connect(*common);
    std::vector<QueueInfo> shown;
    if (set->parsed()) {
      auto patch = QueuePatch(*f);
      if (!patch.ok()) return Fail(patch.status());
      auto r = client->PatchQueue(f->name, *patch);
      if (!r.ok()) return Fail(r.status());
      shown.push_back(*r);
    } else if (get->parsed()) {
      auto r = client->GetQueue(f->name);
      if (!r.ok()) return Fail(r.status());
      shown.push_back(*r);
    } else {
      auto r = client->Queues();
      if (!r.ok()) return Fail(r.status());
      shown = *r;
    }
    if (common->json_out) {
      // As the server wrote it, read again after the change.
      const bool one = get->parsed() || set->parsed();
      auto body = client->Call("GET", one ? "/v1/queues/" + f->name : "/v1/queues");
      if (!body.ok()) return Fail(body.status());
      std::printf("%s\n", body->c_str());
      return 0;
    }
    PrintQueues(shown);
    return 0;
  };
}

}  // namespace dray
