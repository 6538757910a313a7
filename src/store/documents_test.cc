// The store's documents: each reads back as what was written, with every
// field away from its default, and a reader refuses what no writer makes.
#include "store/documents.h"

#include <gtest/gtest.h>

#include "support/status_assert.h"

namespace dray {
namespace {

TaskSpec FullTemplate() {
  TaskSpec s;
  s.type = "report";
  s.ns = "tenant-a";
  s.queue = "reports";
  s.payload = R"({"k":[1,2.5],"s":"x"})";
  s.priority = -3;
  s.run_at = 1'700'000'000'123;
  s.delay_ms = 5000;
  s.max_attempts = 7;
  s.backoff = Backoff{500, 9000, 1.5, 0.1};
  s.timeout_ms = 60'000;
  s.lease_ms = 45'000;
  s.key = "k-1";
  s.labels = {{"a", "b"}, {"c", ""}};
  s.concurrency_key = "acct-42";
  s.concurrency_limit = 2;
  s.placement.resources = {{"cpu", 500}, {"gpu", 1}};
  s.placement.require = {LabelSelector{"zone", SelectorOp::kIn, {"a", "b"}},
                         LabelSelector{"spot", SelectorOp::kNotExists, {}}};
  s.placement.prefer = {LabelPreference{LabelSelector{"disk", SelectorOp::kEquals, {"ssd"}}, 5}};
  s.placement.affinity_key = "aff";
  return s;
}

TEST(DocumentsTest, ASchedulesEveryFieldReadsBack) {
  Schedule s;
  s.spec.ns = "tenant-a";
  s.spec.id = "nightly";
  s.spec.name = "the nightly report";
  s.spec.cron = "0 2 * * *";
  s.spec.timezone = "Asia/Shanghai";
  s.spec.task = FullTemplate();
  s.spec.misfire = MisfirePolicy::kAll;
  s.spec.overlap = OverlapPolicy::kCancelPrevious;
  s.spec.jitter_ms = 3000;
  s.spec.start_at = 1'893'456'000'000;
  s.spec.end_at = 1'993'456'000'000;
  s.spec.paused = true;
  s.spec.max_catchup = 12;
  s.created_at = 1;
  s.updated_at = 2;
  s.last_tick = 3;
  s.last_fired_at = 4;
  s.last_task = "t-9";
  s.buffered_tick = 5;
  s.fired = 6;
  s.skipped = 7;
  auto back = ReadScheduleDocument(ScheduleDocument(s));
  ASSERT_OK(back);
  EXPECT_EQ(*back, s);
  // And at its defaults (an interval schedule, nothing fired yet).
  Schedule plain;
  plain.spec.id = "beat";
  plain.spec.interval_ms = 1000;
  plain.spec.task.type = "beat";
  back = ReadScheduleDocument(ScheduleDocument(plain));
  ASSERT_OK(back);
  EXPECT_EQ(*back, plain);
}

TEST(DocumentsTest, ATriggersEveryFieldReadsBack) {
  Trigger on_event;
  on_event.spec.ns = "tenant-a";
  on_event.spec.id = "ship";
  on_event.spec.name = "ship paid orders";
  on_event.spec.event = "order.paid";
  on_event.spec.match = {{"currency", "\"EUR\""}, {"total", "5"}, {"lines.0.gift", "true"}};
  on_event.spec.task = FullTemplate();
  on_event.spec.paused = true;
  on_event.created_at = 10;
  on_event.updated_at = 11;
  auto back = ReadTriggerDocument(TriggerDocument(on_event));
  ASSERT_OK(back);
  EXPECT_EQ(*back, on_event);

  Trigger on_task;
  on_task.spec.id = "alert";
  on_task.spec.on_task = true;
  on_task.spec.task_queue = "q";
  on_task.spec.task_type = "t";
  on_task.spec.task_states = {TaskState::kFailed, TaskState::kCancelled};
  on_task.spec.task.type = "alert";
  back = ReadTriggerDocument(TriggerDocument(on_task));
  ASSERT_OK(back);
  EXPECT_EQ(*back, on_task);
  // `fired` counts since the server started: not stored.
  on_task.fired = 3;
  EXPECT_EQ(ReadTriggerDocument(TriggerDocument(on_task))->fired, 0);
}

TEST(DocumentsTest, QueueSettingsReadBackAndDefaultsAreLeftOut) {
  QueueSettings s;
  EXPECT_EQ(QueueSettingsDocument(s), "{}");
  s.paused = true;
  s.lease_ms = 1234;
  s.max_attempts = 9;
  s.backoff = Backoff{10, 20, 3.0, 0.0};
  s.concurrency = 4;
  s.key_concurrency = 2;
  s.rate = 2.5;
  s.burst = 6;
  s.weight = 3;
  s.placement = PlacementPolicy::kSpread;
  QueueSettings back;
  ASSERT_OK(ReadQueueSettingsDocument(QueueSettingsDocument(s), &back));
  EXPECT_EQ(back, s);
}

TEST(DocumentsTest, ATasksColumnsReadBack) {
  Task t;
  t.concurrency_key = "k";
  t.concurrency_limit = 3;
  t.node = "b";
  t.depends_on = {"x", "y"};
  t.on_dep_failure = DepFailure::kContinue;
  t.placement = FullTemplate().placement;
  t.placement.worker = "w-1";
  t.placement.shard_index = 1;
  t.placement.shard_total = 4;
  Task back;
  ASSERT_OK(ReadFlowDocument(FlowDocument(t), &back));
  EXPECT_EQ(back.concurrency_key, t.concurrency_key);
  EXPECT_EQ(back.concurrency_limit, t.concurrency_limit);
  EXPECT_EQ(back.node, t.node);
  EXPECT_EQ(back.depends_on, t.depends_on);
  EXPECT_EQ(back.on_dep_failure, t.on_dep_failure);
  EXPECT_EQ(back.placement, t.placement);
  EXPECT_EQ(FlowDocument(Task{}), "");

  std::vector<Attempt> history = {Attempt{1, "w\"1", 10, 20, AttemptOutcome::kTimedOut, "slow"},
                                  Attempt{2, "w2", 30, 0, AttemptOutcome::kRunning, ""}};
  std::vector<Attempt> history_back;
  ASSERT_OK(ReadHistoryDocument(HistoryDocument(history), &history_back));
  EXPECT_EQ(history_back, history);

  Backoff b{1, 2, 1.25, 0.5};
  Backoff b_back;
  ASSERT_OK(ReadBackoffDocument(BackoffDocument(b), &b_back));
  EXPECT_EQ(b_back, b);

  std::map<std::string, std::string> labels = {{"a", "1"}, {"é", "ü"}};
  std::map<std::string, std::string> labels_back;
  ASSERT_OK(ReadLabelsDocument(LabelsDocument(labels), &labels_back));
  EXPECT_EQ(labels_back, labels);

  std::vector<std::string> ids = {"a", "b"};
  std::vector<std::string> ids_back;
  ASSERT_OK(ReadStringListDocument(StringListDocument(ids), &ids_back));
  EXPECT_EQ(ids_back, ids);
}

TEST(DocumentsTest, WhatNoWriterMakesIsDataLossNamingTheField) {
  auto expect_loss = [](const Status& s, const std::string& names) {
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_NE(s.message().find(names), std::string::npos) << s.ToString();
  };
  // The API's form (an RFC 3339 time, an enum by name) is not the store's.
  expect_loss(ReadScheduleDocument(R"({"ns":"default","id":"s","task":{"type":"t"},)"
                                   R"("created_at":"2026-01-01T00:00:00Z"})")
                  .status(),
              "created_at");
  expect_loss(ReadScheduleDocument(R"({"id":"s","task":{"type":"t"},"misfire":"all"})").status(),
              "misfire");
  expect_loss(ReadScheduleDocument(R"({"id":"s","task":{"type":"t"},"misfire":3})").status(),
              "misfire");
  expect_loss(ReadScheduleDocument(R"({"id":"s","task":{"type":"t"},"colour":1})").status(),
              "colour");
  expect_loss(ReadScheduleDocument(R"({"id":"s","task":{"type":"t","run_at":"soon"}})").status(),
              "run_at");
  expect_loss(ReadTriggerDocument(R"({"id":"t","task":{"type":"t"},"task_states":[9]})").status(),
              "task_states");
  Task t;
  expect_loss(ReadFlowDocument(R"({"on_dep_failure":"continue"})", &t), "on_dep_failure");
  expect_loss(ReadFlowDocument(R"({"placement":{"require":[{"key":"z","op":"in"}]}})", &t), "op");
  QueueSettings q;
  expect_loss(ReadQueueSettingsDocument(R"({"placement":"spread"})", &q), "placement");
  std::vector<Attempt> h;
  expect_loss(ReadHistoryDocument(R"([{"number":1,"outcome":6}])", &h), "outcome");
  expect_loss(ReadScheduleDocument("not json").status(), "unreadable");
}

}  // namespace
}  // namespace dray
