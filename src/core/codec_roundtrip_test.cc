// Every resource's encoder and decoder (json_codec.h, json_writer.h) are a
// pair: what one writes, the other reads back unchanged.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/json_codec.h"
#include "core/json_writer.h"
#include "support/status_assert.h"

namespace dray {
namespace {

namespace json = boost::json;

constexpr TimeMs kT = 1'700'000'000'000;

Placement AllOfPlacement() {
  Placement p;
  p.resources = {{"cpu", 1500}, {"gpu", 1}};
  p.require.push_back(LabelSelector{"zone", SelectorOp::kIn, {"a", "b"}});
  p.require.push_back(LabelSelector{"spot", SelectorOp::kNotExists, {}});
  p.prefer.push_back(LabelPreference{LabelSelector{"disk", SelectorOp::kEquals, {"ssd"}}, 7});
  p.affinity_key = "customer-9";
  return p;
}

TaskSpec AllOfTaskSpec() {
  TaskSpec s;
  s.type = "email";
  s.ns = "acme";
  s.queue = "mail";
  s.payload = R"({"to":"a@b","n":[1,2.5]})";
  s.priority = -5;
  s.delay_ms = 1500;
  s.max_attempts = 7;
  s.backoff = Backoff{10, 100, 3.0, 0.25};
  s.timeout_ms = 2000;
  s.lease_ms = 5000;
  s.key = "k1";
  s.labels = {{"team", "x"}, {"tier", ""}};
  s.concurrency_key = "user-1";
  s.concurrency_limit = 2;
  s.placement = AllOfPlacement();
  return s;
}

TEST(CodecRoundTripTest, TaskSpec) {
  TaskSpec s = AllOfTaskSpec();
  auto back = DecodeTaskSpec(EncodeTaskSpec(s), Limits{});
  ASSERT_OK(back);
  EXPECT_EQ(*back, s);
  TaskSpec at;
  at.type = "t";
  at.run_at = kT;
  back = DecodeTaskSpec(EncodeTaskSpec(at), Limits{});
  ASSERT_OK(back);
  EXPECT_EQ(*back, at);
}

Task AllOfTask() {
  Task t;
  t.id = "0190a0b0-0000-7000-8000-000000000001";
  t.ns = "acme";
  t.queue = "q";
  t.type = "x";
  t.payload = R"({"a":[1,2]})";
  t.priority = 3;
  t.run_at = kT;
  t.max_attempts = 4;
  t.backoff = Backoff{250, 9000, 1.5, 0.0};
  t.timeout_ms = 60'000;
  t.lease_ms = 10'000;
  t.key = "idem";
  t.labels = {{"a", "b"}};
  t.concurrency_key = "ck";
  t.concurrency_limit = 3;
  t.placement = AllOfPlacement();
  t.placement.worker = "w1";
  t.placement.shard_index = 2;
  t.placement.shard_total = 5;
  t.depends_on = {"0190a0b0-0000-7000-8000-000000000002"};
  t.on_dep_failure = DepFailure::kContinue;
  t.workflow = "0190a0b0-0000-7000-8000-000000000003";
  t.node = "build";
  t.state = TaskState::kRunning;
  t.attempts = 2;
  t.result = R"({"partial":true})";
  t.error = "first try broke";
  t.created_at = kT;
  t.updated_at = kT + 1;
  t.lease_expires_at = kT + 30'000;
  t.worker = "w1";
  t.cancel_requested = true;
  t.history = {Attempt{1, "w0", kT, kT + 5, AttemptOutcome::kFailed, "first try broke"},
               Attempt{2, "w1", kT + 10, 0, AttemptOutcome::kRunning, ""}};
  t.wait_reason = "resources";
  t.wait_detail = "cpu";
  return t;
}

TEST(CodecRoundTripTest, Task) {
  const Task t = AllOfTask();
  auto back = DecodeTask(json::parse(TaskToJson(t)));
  ASSERT_OK(back);
  EXPECT_EQ(*back, t);

  Task done = t;
  done.state = TaskState::kSucceeded;
  done.finished_at = kT + 99;
  done.worker.clear();  // only a running task shows its worker and lease
  done.lease_expires_at = 0;
  done.cancel_requested = false;
  done.history.back().ended_at = kT + 99;
  done.history.back().outcome = AttemptOutcome::kSucceeded;
  back = DecodeTask(json::parse(TaskToJson(done)));
  ASSERT_OK(back);
  EXPECT_EQ(*back, done);
}

// The change feed's and the trigger source's views of a task hold fields of
// the full task JSON, written the same way.
TEST(CodecRoundTripTest, TaskViewsAgreeWithTheFullTask) {
  Task t = AllOfTask();
  t.state = TaskState::kFailed;
  t.finished_at = kT + 50;
  const json::object full = EncodeTask(t);
  std::string change;
  AppendTaskChangeJson(t, 1 << 20, &change);
  std::string outcome;
  AppendTaskOutcomeJson(t, &outcome);
  for (const std::string& text : {change, outcome}) {
    SCOPED_TRACE(text);
    const json::object view = json::parse(text).as_object();
    EXPECT_GE(view.size(), 7u);
    for (const auto& kv : view) EXPECT_EQ(kv.value(), full.at(kv.key())) << kv.key();
  }
  std::string cut;
  AppendTaskChangeJson(t, 4, &cut);
  const json::object v = json::parse(cut).as_object();
  EXPECT_FALSE(v.contains("result"));
  EXPECT_EQ(v.at("result_truncated"), true);
  Task bare;
  bare.id = t.id;
  outcome.clear();
  AppendTaskOutcomeJson(bare, &outcome);
  EXPECT_TRUE(json::parse(outcome).at("result").is_null());
  EXPECT_TRUE(json::parse(outcome).at("error").is_null());
}

TEST(CodecRoundTripTest, Placement) {
  Placement p = AllOfPlacement();
  p.worker = "w9";
  p.shard_index = 1;
  p.shard_total = 3;
  EXPECT_EQ(DecodePlacement(json::parse("{" + PlacementToJson(p) + "}").as_object()), p);
  EXPECT_EQ(DecodePlacement(EncodePlacement(p)), p);
  EXPECT_EQ(PlacementToJson(Placement{}), "");
}

TEST(CodecRoundTripTest, Backoff) {
  const Backoff b{10, 100, 3.0, 0.25};
  auto back = DecodeBackoff(EncodeBackoff(b), "backoff");
  ASSERT_OK(back);
  EXPECT_EQ(*back, b);
}

TEST(CodecRoundTripTest, QueueSettings) {
  QueueSettings s;
  s.paused = true;
  s.lease_ms = 12'000;
  s.max_attempts = 9;
  s.backoff = Backoff{20, 200, 2.5, 0.5};
  s.concurrency = 4;
  s.key_concurrency = 2;
  s.rate = 2.5;
  s.burst = 6;
  s.weight = 30;
  s.placement = PlacementPolicy::kSpread;
  QueueSettings back;
  ASSERT_TRUE(ApplyQueuePatch(EncodeQueueSettings(s), &back).ok());
  EXPECT_EQ(back, s);
}

TEST(CodecRoundTripTest, Schedule) {
  Schedule s;
  s.spec.ns = "acme";
  s.spec.id = "nightly";
  s.spec.name = "Nightly report";
  s.spec.cron = "0 3 * * *";
  s.spec.timezone = "Europe/Paris";
  s.spec.task = AllOfTaskSpec();
  s.spec.task.ns = "acme";
  s.spec.task.key.clear();  // a template has no key, run_at or delay
  s.spec.misfire = MisfirePolicy::kAll;
  s.spec.overlap = OverlapPolicy::kBufferOne;
  s.spec.jitter_ms = 500;
  s.spec.start_at = kT;
  s.spec.end_at = kT + 86'400'000;
  s.spec.paused = true;
  s.spec.max_catchup = 12;
  s.created_at = kT;
  s.updated_at = kT + 1;
  s.last_tick = kT + 2;
  s.last_fired_at = kT + 3;
  s.last_task = "0190a0b0-0000-7000-8000-000000000009";
  s.buffered_tick = kT + 4;
  s.fired = 5;
  s.skipped = 6;
  s.next_fire_times = {kT + 10, kT + 20};
  auto back = DecodeSchedule(EncodeSchedule(s));
  ASSERT_OK(back);
  EXPECT_EQ(*back, s);

  Schedule every;
  every.spec.id = "every";
  every.spec.interval_ms = 60'000;
  every.spec.task.type = "t";
  back = DecodeSchedule(EncodeSchedule(every));
  ASSERT_OK(back);
  EXPECT_EQ(*back, every);
}

TEST(CodecRoundTripTest, Trigger) {
  Trigger t;
  t.spec.ns = "acme";
  t.spec.id = "on-order";
  t.spec.name = "When an order comes";
  t.spec.event = "order.created";
  t.spec.match = {{"order.currency", "\"EUR\""}, {"order.total", "5"}, {"gift", "null"}};
  t.spec.task.type = "ship";
  t.spec.task.ns = "acme";
  t.spec.task.queue = "shipping";
  t.spec.task.payload = R"({"fast":true})";
  t.spec.paused = true;
  t.created_at = kT;
  t.updated_at = kT + 1;
  t.fired = 4;
  auto back = DecodeTrigger(EncodeTrigger(t));
  ASSERT_OK(back);
  EXPECT_EQ(*back, t);
}

TEST(CodecRoundTripTest, Event) {
  Event e;
  e.ns = "acme";
  e.id = "evt-1";
  e.name = "order.created";
  e.payload = R"({"order":{"total":5}})";
  e.created_at = kT;
  e.tasks = {"0190a0b0-0000-7000-8000-000000000001"};
  auto back = DecodeEvent(EncodeEvent(e));
  ASSERT_OK(back);
  EXPECT_EQ(*back, e);
}

TEST(CodecRoundTripTest, Worker) {
  WorkerInfo w;
  w.spec.ns = "acme";
  w.spec.id = "gpu-box-1";
  w.spec.capacity = {{"cpu", 8000}, {"gpu", 2}};
  w.spec.gpu_devices = {"0", "1"};
  w.spec.labels = {{"zone", "a"}, {"spot", ""}};
  w.spec.queues = {"train", "infer"};
  w.registered_at = kT;
  w.last_seen = kT + 5;
  w.running = {"0190a0b0-0000-7000-8000-000000000001"};
  w.in_use = {{"cpu", 1000}};
  w.gpu_devices_in_use = {"1"};
  w.reserved_for = "0190a0b0-0000-7000-8000-000000000002";
  const WorkerInfo back = DecodeWorker(EncodeWorker(w));
  EXPECT_EQ(back.spec, w.spec);
  EXPECT_EQ(back.registered_at, w.registered_at);
  EXPECT_EQ(back.last_seen, w.last_seen);
  EXPECT_EQ(back.running, w.running);
  EXPECT_EQ(back.in_use, w.in_use);
  EXPECT_EQ(back.gpu_devices_in_use, w.gpu_devices_in_use);
  EXPECT_EQ(back.reserved_for, w.reserved_for);
  // The spec as POST /v1/workers takes it is part of the same document.
  json::object spec = EncodeWorker(w);
  for (const char* k : {"namespace", "registered_at", "last_seen", "running", "in_use",
                        "gpu_devices_in_use", "reserved_for"}) {
    spec.erase(k);
  }
  auto decoded = DecodeWorkerSpec(spec, Limits{});
  ASSERT_OK(decoded);
  WorkerSpec want = w.spec;
  want.ns = "default";  // the namespace comes from the query
  EXPECT_EQ(*decoded, want);
}

TEST(CodecRoundTripTest, Workflow) {
  Workflow w;
  w.id = "0190a0b0-0000-7000-8000-000000000003";
  w.ns = "acme";
  w.name = "release";
  w.state = WorkflowState::kFailed;
  w.on_failure = DepFailure::kContinue;
  w.tasks = 4;
  w.cancel_requested = true;
  w.created_at = kT;
  w.updated_at = kT + 1;
  w.finished_at = kT + 2;
  std::string text;
  AppendWorkflowJson(w, &text);
  EXPECT_EQ(DecodeWorkflow(json::parse(text).as_object()), w);
}

// The decoders read by core/json_fields.h's rules.
TEST(CodecRoundTripTest, DecodersReadWholeNumbersAndNullsByTheFieldRules) {
  auto spec = DecodeTaskSpec(json::parse(R"({"type":"t","max_attempts":3.0,"priority":null,
      "backoff":{"initial_ms":1e3,"max_ms":null},"labels":{"a":null,"b":""}})"),
                             Limits{});
  ASSERT_OK(spec);
  EXPECT_EQ(spec->max_attempts, 3);
  EXPECT_EQ(spec->priority, 0);
  EXPECT_EQ(spec->backoff->initial_ms, 1000);
  EXPECT_EQ(spec->backoff->max_ms, Backoff{}.max_ms);
  EXPECT_EQ(spec->labels, (std::map<std::string, std::string>{{"b", ""}}));
  EXPECT_EQ(DecodeTaskSpec(json::parse(R"({"type":"t","max_attempts":3.5})"), Limits{})
                .status()
                .message(),
            "field 'max_attempts' must be an integer");
  QueueSettings s;
  ASSERT_TRUE(ApplyQueuePatch(json::parse(R"({"weight":4.0,"paused":null})"), &s).ok());
  EXPECT_EQ(s.weight, 4);
  EXPECT_FALSE(s.paused);
}

}  // namespace
}  // namespace dray
