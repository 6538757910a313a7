#include "cli/submit_command.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "core/json_codec.h"
#include "core/json_writer.h"
#include "core/limits.h"
#include "core/time_format.h"

namespace json = boost::json;

namespace dray {

namespace {

struct SubmitFlags {
  TaskSpec spec;
  std::string payload, run_at, resources;
  std::int64_t delay_ms = -1, timeout_ms = -1;
  int max_attempts = 0;
  std::vector<std::string> labels, require, prefer;
  bool broadcast = false;
  bool wait = false;
  std::int64_t wait_timeout_ms = 3'600'000;
};

// One --require or --prefer selector, read as the API reads one item of
// "require"; errors name `flag`.
StatusOr<LabelSelector> ParseSelector(const std::string& text, const char* flag) {
  Placement p;
  bool known = false;
  Status s = DecodePlacementField("require", json::array{json::string(text)}, flag, Limits{}, &p,
                                  &known);
  if (!s.ok()) return s;
  return p.require.front();
}

// --payload, the times, --max-attempts and --label into f->spec.
Status ApplyTaskFlags(SubmitFlags* f) {
  TaskSpec& spec = f->spec;
  if (!f->payload.empty()) {
    auto v = ParseJson(f->payload);
    if (!v.ok()) return InvalidArgument("--payload is not JSON");
    spec.payload = JsonText(*v);
  }
  if (f->delay_ms >= 0) spec.delay_ms = f->delay_ms;
  if (f->timeout_ms >= 0) spec.timeout_ms = f->timeout_ms;
  if (f->max_attempts > 0) spec.max_attempts = f->max_attempts;
  if (!f->run_at.empty()) {
    auto t = ParseRfc3339(f->run_at);
    if (!t) return InvalidArgument("--run-at is not an RFC 3339 time");
    spec.run_at = *t;
  }
  for (const std::string& l : f->labels) {
    auto eq = l.find('=');
    if (eq == std::string::npos) return InvalidArgument("--label wants k=v");
    spec.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  return Status::Ok();
}

// --resources, --require and --prefer into f->spec.placement.
Status ApplyPlacementFlags(SubmitFlags* f) {
  Placement& placement = f->spec.placement;
  std::map<std::string, std::int64_t> amounts;
  DRAY_RETURN_IF_ERROR(ParseAmounts(f->resources, "--resources", &amounts));
  for (const auto& [name, n] : amounts) {
    if (n > 0) placement.resources[name] = n;
  }
  for (const std::string& r : f->require) {
    auto sel = ParseSelector(r, "--require");
    if (!sel.ok()) return sel.status();
    placement.require.push_back(std::move(*sel));
  }
  for (const std::string& p : f->prefer) {
    // "WEIGHT:selector" when digits come before the first colon.
    std::int32_t weight = 1;
    std::string text = p;
    if (auto colon = p.find(':'); colon != std::string::npos && colon > 0 &&
                                  p.find_first_not_of("0123456789") == colon) {
      weight = static_cast<std::int32_t>(std::min(1000L, std::strtol(p.c_str(), nullptr, 10)));
      text = p.substr(colon + 1);
    }
    auto sel = ParseSelector(text, "--prefer");
    if (!sel.ok()) return sel.status();
    placement.prefer.push_back(LabelPreference{std::move(*sel), std::max(weight, 1)});
  }
  return Status::Ok();
}

// Prints each copy's id; with --wait, waits for each and prints it. Exit 0
// when every copy succeeded (or was not waited for).
int SubmitBroadcast(Client& client, const SubmitFlags& f, const CliCommon& common) {
  auto copies = client.Broadcast(f.spec);
  if (!copies.ok()) return Fail(copies.status());
  for (const BroadcastCopy& c : *copies) {
    std::printf("%s  %s  shard %d/%zu\n", c.id.c_str(), c.worker.c_str(), c.shard_index,
                copies->size());
  }
  if (!f.wait) return 0;
  int rc = 0;
  for (const BroadcastCopy& c : *copies) {
    auto t = client.Wait(c.id, std::chrono::milliseconds(f.wait_timeout_ms));
    if (!t.ok()) return Fail(t.status());
    PrintTask(*t, common.json_out);
    if (t->state != TaskState::kSucceeded) rc = 1;
  }
  return rc;
}

// Prints the task's id; with --wait, waits and prints the task, exit 0 if
// it succeeded.
int SubmitOne(Client& client, const SubmitFlags& f, const CliCommon& common) {
  auto r = client.Submit(f.spec);
  if (!r.ok()) return Fail(r.status());
  if (!f.wait) {
    if (common.json_out) {
      std::printf("{\"id\":\"%s\",\"created\":%s}\n", r->id.c_str(), r->created ? "true" : "false");
    } else {
      std::printf("%s\n", r->id.c_str());
    }
    return 0;
  }
  auto t = client.Wait(r->id, std::chrono::milliseconds(f.wait_timeout_ms));
  if (!t.ok()) return Fail(t.status());
  PrintTask(*t, common.json_out);
  return t->state == TaskState::kSucceeded ? 0 : 1;
}

void AddSubmitFlags(CLI::App* submit, SubmitFlags* f) {
  TaskSpec& spec = f->spec;
  submit->add_option("type", spec.type, "task type (default: exec)");
  submit->add_option("--payload", f->payload, "payload as JSON");
  submit->add_option("--queue", spec.queue, "queue")->capture_default_str();
  submit->add_option("--priority", spec.priority, "lower runs first");
  submit->add_option("--delay-ms", f->delay_ms, "start no sooner than this many ms from now");
  submit->add_option("--run-at", f->run_at, "start no sooner than this RFC 3339 time");
  submit->add_option("--max-attempts", f->max_attempts, "attempts before failing");
  submit->add_option("--timeout-ms", f->timeout_ms, "per-attempt timeout");
  submit->add_option("--key", spec.key, "idempotency key");
  submit->add_option("--concurrency-key", spec.concurrency_key,
                     "tasks sharing it run in submit order, --concurrency-limit at a time");
  submit->add_option("--concurrency-limit", spec.concurrency_limit,
                     "the key's limit (default: the queue's key_concurrency, 1)");
  submit->add_option("--label", f->labels, "k=v (repeatable)");
  submit->add_option("--resources", f->resources,
                     "what an attempt holds on its worker, e.g. cpu=2000,memory_mb=4096,gpu=1");
  submit->add_option("--require", f->require,
                     "worker labels: k=v, k!=v, k (set) or !k (not set); repeatable");
  submit->add_option("--prefer", f->prefer, "soft: [WEIGHT:]k=v etc.; repeatable");
  submit->add_option("--affinity-key", spec.placement.affinity_key,
                     "tasks with the same key run on the same worker while it lives");
  submit->add_flag("--broadcast", f->broadcast,
                   "one copy per live worker that could run it (prints each copy's id)");
  submit->add_flag("--wait", f->wait, "wait for the task to finish and print it");
  submit->add_option("--wait-timeout-ms", f->wait_timeout_ms, "how long --wait waits");
  submit->footer("After --, the command to run: dray submit --wait -- echo hello");
}

}  // namespace

std::function<int()> AddSubmitCommand(CLI::App* app, CliCommon* common,
                                      const std::vector<std::string>* command) {
  auto f = std::make_shared<SubmitFlags>();
  CLI::App* submit = app->add_subcommand("submit", "Submit a task; after --, the command to run");
  AddCommonFlags(submit, common);
  AddSubmitFlags(submit, f.get());
  return [=]() -> int {
    if (!submit->parsed()) return -1;
    TaskSpec& spec = f->spec;
    if (!command->empty()) {
      json::array a;
      for (const std::string& c : *command) a.push_back(json::string(c));
      spec.payload = JsonText(json::object{{"argv", std::move(a)}});
      if (spec.type.empty()) spec.type = "exec";
    }
    if (spec.type.empty()) {
      std::fprintf(stderr, "dray: submit needs a TYPE or a command after --\n");
      return 2;
    }
    if (Status st = ApplyTaskFlags(f.get()); !st.ok()) return Fail(st);
    if (Status st = ApplyPlacementFlags(f.get()); !st.ok()) return Fail(st);
    spec.ns = common->ns;
    auto client = Connect(*common);
    return f->broadcast ? SubmitBroadcast(*client, *f, *common) : SubmitOne(*client, *f, *common);
  };
}

std::vector<std::string> TakeSubmitCommand(std::vector<std::string>* args) {
  std::vector<std::string> command;
  if (args->empty() || (*args)[0] != "submit") return command;
  auto dash = std::find(args->begin(), args->end(), "--");
  if (dash != args->end()) {
    command.assign(dash + 1, args->end());
    args->erase(dash, args->end());
  }
  return command;
}

}  // namespace dray
