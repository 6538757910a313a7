// Events and triggers in the engine (issue 6): an event's tasks and its
// record leave in one output, an outcome's tasks in the output of the
// transition that ended the source task; de-duplication, matching, pause,
// and what survives a restart.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/json_codec.h"
#include "engine/engine.h"
#include "engine/spec_builders_test_util.h"
#include "support/status_assert.h"

namespace dray {
namespace {

using testing_specs::OnEvent;
using testing_specs::OnTask;

namespace json = boost::json;

constexpr TimeMs kT0 = 1'700'000'000'000;

std::vector<Task> Created(const EngineOutput& out) {
  std::vector<Task> tasks;
  for (const Mutation& m : out.mutations) {
    if (const auto* p = std::get_if<mutation::PutTask>(&m)) tasks.push_back(*p->task);
  }
  return tasks;
}

class TriggerTest : public ::testing::Test {
 protected:
  TriggerTest() : engine_(EngineOptions{60'000, 1'000'000, 3}) {}

  void Create(TriggerSpec spec) {
    EngineOutput out;
    auto r = engine_.CreateTrigger(std::move(spec), now_, &out);
    ASSERT_OK(r);
    ASSERT_EQ(out.mutations.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<mutation::PutTrigger>(out.mutations[0]));
  }
  StatusOr<Engine::EventOutcome> Emit(std::string name, std::string payload, std::string id = "",
                                      EngineOutput* out = nullptr) {
    EngineOutput local;
    if (!out) out = &local;
    EventSpec e;
    e.name = std::move(name);
    e.payload = payload;
    e.id = std::move(id);
    const json::value parsed = json::parse(payload);
    return engine_.EmitEvent(
        std::move(e), [&](const TriggerSpec& t) { return MatchPayload(parsed, t.match); }, now_,
        out);
  }

  TimeMs now_ = kT0;
  Engine engine_;
};

TEST_F(TriggerTest, AnEventsTasksAndItsRecordLeaveInOneOutput) {
  Create(OnEvent("ship", "order.paid"));
  EngineOutput out;
  auto r = Emit("order.paid", R"({"order":1234})", "", &out);
  ASSERT_OK(r);
  EXPECT_FALSE(r->duplicate);
  ASSERT_EQ(r->event.tasks.size(), 1u);
  auto tasks = Created(out);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].id, r->event.tasks[0]);
  EXPECT_EQ(tasks[0].type, "ship");
  EXPECT_EQ(tasks[0].labels.at("dray.trigger"), "ship");
  EXPECT_EQ(tasks[0].labels.at("dray.event"), r->event.id);
  json::value payload = json::parse(tasks[0].payload);
  EXPECT_EQ(payload.at("input").at("carrier"), "dhl");
  EXPECT_EQ(payload.at("event").at("name"), "order.paid");
  EXPECT_EQ(payload.at("event").at("payload").at("order"), 1234);
  EXPECT_EQ(payload.at("event").at("id").as_string(), r->event.id);
  // The event's row is in the same output, after its task.
  ASSERT_TRUE(std::holds_alternative<mutation::PutEvent>(out.mutations.back()));
  EXPECT_EQ(std::get<mutation::PutEvent>(out.mutations.back()).event->tasks, r->event.tasks);
  // Other names fire nothing, but are recorded.
  EngineOutput other;
  ASSERT_OK(Emit("order.refunded", "{}", "", &other));
  EXPECT_TRUE(Created(other).empty());
  ASSERT_EQ(other.mutations.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<mutation::PutEvent>(other.mutations[0]));
}

TEST_F(TriggerTest, MatchAndPauseDecideWhichTriggersFire) {
  TriggerSpec eur = OnEvent("eur", "order.paid");
  eur.match = {{"currency", "\"EUR\""}, {"customer.tier", "2"}};
  Create(eur);
  Create(OnEvent("all", "order.paid"));
  auto r = Emit("order.paid", R"({"currency":"EUR","customer":{"tier":2.0}})");
  ASSERT_OK(r);
  EXPECT_EQ(r->event.tasks.size(), 2u);
  r = Emit("order.paid", R"({"currency":"USD","customer":{"tier":2}})");
  EXPECT_EQ(r->event.tasks.size(), 1u);
  r = Emit("order.paid", R"({"currency":"EUR"})");
  EXPECT_EQ(r->event.tasks.size(), 1u);  // no customer.tier
  EngineOutput out;
  ASSERT_OK(engine_.SetTriggerPaused("default", "all", true, now_, &out));
  r = Emit("order.paid", R"({"currency":"EUR","customer":{"tier":2}})");
  EXPECT_EQ(r->event.tasks.size(), 1u);
  ASSERT_OK(engine_.DeleteTrigger("default", "eur", &out));
  r = Emit("order.paid", R"({"currency":"EUR","customer":{"tier":2}})");
  EXPECT_TRUE(r->event.tasks.empty());
}

TEST_F(TriggerTest, AnEventIdSeenWithinTheWindowFiresNothingAgainEvenAfterARestart) {
  Create(OnEvent("ship", "order.paid"));
  auto first = Emit("order.paid", "{}", "order-1234");
  ASSERT_OK(first);
  EXPECT_EQ(first->event.id, "order-1234");
  EngineOutput out;
  auto again = Emit("order.paid", "{}", "order-1234", &out);
  ASSERT_OK(again);
  EXPECT_TRUE(again->duplicate);
  EXPECT_TRUE(out.mutations.empty());
  // A restart: the ids within the window come back from the store.
  Engine restarted(EngineOptions{60'000, 1'000'000, 4});
  restarted.RestoreEventId("default", "order-1234", kT0);
  Trigger t;
  t.spec = OnEvent("ship", "order.paid");
  restarted.RestoreTrigger(t);
  EventSpec e;
  e.name = "order.paid";
  e.id = "order-1234";
  EngineOutput out2;
  auto dup = restarted.EmitEvent(EventSpec(e), [](const TriggerSpec&) { return true; },
                                 kT0 + 59'999, &out2);
  ASSERT_OK(dup);
  EXPECT_TRUE(dup->duplicate);
  // Past the window the id is new again.
  auto late = restarted.EmitEvent(EventSpec(e), [](const TriggerSpec&) { return true; },
                                  kT0 + 60'000, &out2);
  ASSERT_OK(late);
  EXPECT_FALSE(late->duplicate);
  EXPECT_EQ(late->event.tasks.size(), 1u);
}

TEST_F(TriggerTest, AnOutcomeFiresInTheOutputOfTheTransitionThatEndedTheTask) {
  Create(OnTask("alert", "payments", {TaskState::kFailed}));
  std::vector<TaskSpec> specs(2);
  for (TaskSpec& s : specs) {
    s.type = "charge";
    s.queue = "payments";
    s.max_attempts = 1;
  }
  EngineOutput out;
  auto ids = engine_.Submit(std::move(specs), now_, &out);
  ASSERT_OK(ids);
  auto leased = engine_.Lease(LeaseRequest{"default", "w", {"payments"}, 2, 60'000}, now_, &out);
  ASSERT_OK(leased);
  ASSERT_EQ(leased->size(), 2u);
  // Success: nothing.
  EngineOutput ok;
  ASSERT_TRUE(engine_.Complete("default", leased->at(0).task.id, leased->at(0).lease.token, "1",
                               now_, &ok).ok());
  EXPECT_TRUE(Created(ok).empty());
  // Failure: the alert, in the same output as the failed task's row.
  EngineOutput failed;
  ASSERT_TRUE(engine_.Fail("default", leased->at(1).task.id, leased->at(1).lease.token,
                           "card declined", false, R"({"code":51})", now_, &failed).ok());
  auto tasks = Created(failed);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].type, "alert");
  EXPECT_EQ(tasks[0].labels.at("dray.source"), leased->at(1).task.id);
  json::value source = json::parse(tasks[0].payload).at("source");
  EXPECT_EQ(source.at("id").as_string(), leased->at(1).task.id);
  EXPECT_EQ(source.at("state"), "failed");
  EXPECT_EQ(source.at("error"), "card declined");
  EXPECT_EQ(source.at("result").at("code"), 51);
  EXPECT_EQ(engine_.FindTrigger("default", "alert")->fired, 1);
}

TEST_F(TriggerTest, CascadedCancellationsFireOutcomeTriggersToo) {
  Create(OnTask("cleanup", "wf", {TaskState::kCancelled}));
  WorkflowSpec w;
  for (const char* name : {"a", "b", "c"}) {
    WorkflowNodeSpec n;
    n.name = name;
    n.task.type = "step";
    n.task.queue = "wf";
    if (std::string(name) != "a") n.depends_on = {"a"};
    w.tasks.push_back(n);
  }
  EngineOutput out;
  auto wf = engine_.SubmitWorkflow(std::move(w), {}, now_, &out);
  ASSERT_OK(wf);
  EngineOutput cancelled;
  ASSERT_OK(engine_.CancelWorkflow("default", wf->workflow.id, now_, &cancelled));
  auto tasks = Created(cancelled);
  EXPECT_EQ(tasks.size(), 3u);  // one per cancelled task
  for (const Task& t : tasks) EXPECT_EQ(t.type, "alert");
}

TEST_F(TriggerTest, AtTheLiveTaskLimitAnEventIsRefusedWhole) {
  Engine small(EngineOptions{60'000, 1, 3});
  EngineOutput out;
  ASSERT_OK(small.CreateTrigger(OnEvent("a", "e"), now_, &out));
  ASSERT_OK(small.CreateTrigger(OnEvent("b", "e"), now_, &out));
  EventSpec e;
  e.name = "e";
  e.id = "x";
  EngineOutput refused;
  auto r = small.EmitEvent(std::move(e), [](const TriggerSpec&) { return true; }, now_, &refused);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(refused.mutations.empty());
}

TEST_F(TriggerTest, ADuplicateTriggerIdIsRefusedAndListingPagesById) {
  Create(OnEvent("b", "e"));
  Create(OnEvent("a", "e"));
  EngineOutput out;
  EXPECT_EQ(engine_.CreateTrigger(OnEvent("a", "e"), now_, &out).status().code(),
            StatusCode::kAlreadyExists);
  auto page = engine_.ListTriggers("default", "", 1);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].spec.id, "a");
  page = engine_.ListTriggers("default", "a", 10);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].spec.id, "b");
}

}  // namespace
}  // namespace dray
