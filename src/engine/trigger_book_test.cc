// TriggerBook on its own, with a fake host standing for the engine: an
// event's tasks before its record, matching and pause, the event-id
// de-duplication window, the live-task limit, outcome triggers queued and
// fired one by one, and the bookkeeping of create, pause, delete and list.
// trigger_test.cc tests the same through Engine.
#include "engine/trigger_book.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "core/time_format.h"
#include "engine/spec_builders_test_util.h"
#include "support/status_assert.h"

namespace dray {
namespace {

using testing_specs::OnEvent;
using testing_specs::OnTask;

namespace json = boost::json;

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr std::int64_t kWindow = 60'000;

// The engine as the book sees it: a count of live tasks under a limit, and
// a log of what it was asked, in order. Triggers never ask whether a task
// is live or cancel one.
class FakeHost : public TaskHost {
 public:
  bool IsLive(const std::string&, const std::string&) const override {
    ADD_FAILURE() << "IsLive";
    return false;
  }
  Status Room(std::size_t n) const override {
    if (live + n <= limit) return Status::Ok();
    return ResourceExhausted("the server holds " + std::to_string(live) + " live tasks");
  }
  std::string Submit(TaskSpec&& spec, TimeMs) override {
    std::string id = "task-" + std::to_string(submitted.size() + 1);
    ++live;
    log.push_back("submit " + id);
    submitted.push_back(std::move(spec));
    return id;
  }
  void Cancel(const std::string&, const std::string&, const std::string&, TimeMs) override {
    ADD_FAILURE() << "Cancel";
  }
  void Record(Mutation m) override {
    if (const auto* p = std::get_if<mutation::PutTrigger>(&m)) {
      log.push_back("put trigger " + p->trigger->spec.id);
    } else if (const auto* d = std::get_if<mutation::DeleteTrigger>(&m)) {
      log.push_back("delete trigger " + d->id);
    } else if (const auto* e = std::get_if<mutation::PutEvent>(&m)) {
      log.push_back("put event " + e->event->id);
      events.push_back(*e->event);
    } else {
      log.push_back("other");
    }
  }

  std::size_t live = 0;
  std::size_t limit = 1'000;
  std::vector<std::string> log;
  std::vector<TaskSpec> submitted;
  std::vector<Event> events;  // every PutEvent, in order
};

Task Ended(std::string id, std::string queue, TaskState state) {
  Task t;
  t.id = std::move(id);
  t.queue = std::move(queue);
  t.type = "work";
  t.state = state;
  t.attempts = 1;
  t.error = "boom";
  return t;
}

class TriggerBookTest : public ::testing::Test {
 protected:
  TriggerBookTest() : book_(&ids_, kWindow) {}

  void Create(TriggerSpec spec) { ASSERT_OK(book_.Create(std::move(spec), now_, &host_)); }
  // Emits an event; `pass` is what the caller's payload match answers.
  StatusOr<EventOutcome> Emit(std::string name, std::string id = "", bool pass = true) {
    EventSpec e;
    e.name = std::move(name);
    e.id = std::move(id);
    e.payload = R"({"order":7})";
    return book_.Emit(std::move(e), [pass](const TriggerSpec&) { return pass; }, now_, &host_);
  }
  void DrainPending() {
    while (book_.has_pending()) book_.FirePending(now_, &host_);
  }

  TimeMs now_ = kT0;
  IdGenerator ids_;
  FakeHost host_;
  TriggerBook book_;
};

TEST_F(TriggerBookTest, AnEventSubmitsForEachTriggerOnItsNameThenRecordsTheEvent) {
  Create(OnEvent("first", "order.paid"));
  Create(OnEvent("second", "order.paid"));
  Create(OnEvent("other", "order.lost"));
  host_.log.clear();
  auto r = Emit("order.paid", "e1");
  ASSERT_OK(r);
  EXPECT_FALSE(r->duplicate);
  // In the order the triggers were made; the event last, naming its tasks.
  EXPECT_EQ(host_.log,
            (std::vector<std::string>{"submit task-1", "submit task-2", "put event e1"}));
  EXPECT_EQ(r->event.tasks, (std::vector<std::string>{"task-1", "task-2"}));
  EXPECT_EQ(host_.events.back(), r->event);
  EXPECT_EQ(r->event.created_at, now_);
  ASSERT_EQ(host_.submitted.size(), 2u);
  const TaskSpec& spec = host_.submitted[0];
  EXPECT_EQ(spec.ns, "default");
  EXPECT_EQ(spec.queue, "shipping");
  EXPECT_EQ(spec.labels.at("dray.trigger"), "first");
  EXPECT_EQ(spec.labels.at("dray.event"), "e1");
  const json::value payload = json::parse(spec.payload);
  EXPECT_EQ(payload.at("input"), json::parse(R"({"carrier":"dhl"})"));
  EXPECT_EQ(payload.at("event").at("id"), "e1");
  EXPECT_EQ(payload.at("event").at("name"), "order.paid");
  EXPECT_EQ(payload.at("event").at("payload"), json::parse(R"({"order":7})"));
  EXPECT_EQ(payload.at("event").at("created_at"), json::value(FormatRfc3339(now_)));
  EXPECT_EQ(book_.Find("default", "first")->fired, 1);
  EXPECT_EQ(book_.Find("default", "other")->fired, 0);
}

TEST_F(TriggerBookTest, AnEventNoTriggerTakesIsStillRecordedWithAnId) {
  auto r = Emit("nobody.listens");
  ASSERT_OK(r);
  EXPECT_TRUE(IsValidId(r->event.id)) << r->event.id;
  EXPECT_TRUE(r->event.tasks.empty());
  EXPECT_EQ(host_.log, (std::vector<std::string>{"put event " + r->event.id}));
}

TEST_F(TriggerBookTest, APausedTriggerOrAFailedMatchFiresNothing) {
  Create(OnEvent("ship", "order.paid"));
  ASSERT_OK(Emit("order.paid", "", /*pass=*/false));
  EXPECT_TRUE(host_.submitted.empty());

  host_.log.clear();
  auto paused = book_.SetPaused("default", "ship", true, now_, &host_);
  ASSERT_OK(paused);
  EXPECT_TRUE(paused->spec.paused);
  EXPECT_EQ(host_.log, (std::vector<std::string>{"put trigger ship"}));
  ASSERT_OK(book_.SetPaused("default", "ship", true, now_, &host_));
  EXPECT_EQ(host_.log.size(), 1u);  // no change: nothing recorded
  ASSERT_OK(Emit("order.paid"));
  EXPECT_TRUE(host_.submitted.empty());

  ASSERT_OK(book_.SetPaused("default", "ship", false, now_, &host_));
  ASSERT_OK(Emit("order.paid"));
  EXPECT_EQ(host_.submitted.size(), 1u);
  EXPECT_EQ(book_.SetPaused("default", "nope", true, now_, &host_).status().message(),
            "no trigger 'nope' in namespace 'default'");
}

TEST_F(TriggerBookTest, AnEventIdIsADuplicateWithinTheWindowAndNewAfterIt) {
  Create(OnEvent("ship", "order.paid"));
  ASSERT_OK(Emit("order.paid", "e1"));
  ASSERT_EQ(host_.submitted.size(), 1u);
  const std::size_t logged = host_.log.size();

  now_ = kT0 + kWindow - 1;
  book_.PruneEventIds(now_);
  auto again = Emit("order.paid", "e1");
  ASSERT_OK(again);
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->event.id, "e1");
  EXPECT_EQ(again->event.created_at, kT0);  // the first one's
  EXPECT_EQ(host_.log.size(), logged);      // nothing submitted, nothing recorded

  // Another namespace has ids of its own.
  EventSpec elsewhere;
  elsewhere.ns = "other";
  elsewhere.id = "e1";
  elsewhere.name = "order.paid";
  auto other = book_.Emit(std::move(elsewhere), [](const TriggerSpec&) { return true; }, now_,
                          &host_);
  ASSERT_OK(other);
  EXPECT_FALSE(other->duplicate);

  now_ = kT0 + kWindow;
  book_.PruneEventIds(now_);
  auto later = Emit("order.paid", "e1");
  ASSERT_OK(later);
  EXPECT_FALSE(later->duplicate);
  EXPECT_EQ(host_.submitted.size(), 2u);
}

TEST_F(TriggerBookTest, ARestoredEventIdIsADuplicateUntilItsWindowPasses) {
  book_.RestoreEventId("default", "old", kT0 - 10);
  book_.RestoreEventId("default", "recent", kT0 - 5);
  now_ = kT0 + kWindow - 10;
  book_.PruneEventIds(now_);
  EXPECT_FALSE(Emit("x", "old")->duplicate);
  EXPECT_TRUE(Emit("x", "recent")->duplicate);
}

TEST_F(TriggerBookTest, AtTheLiveTaskLimitAnEventIsRefusedWhole) {
  Create(OnEvent("a", "order.paid"));
  Create(OnEvent("b", "order.paid"));
  host_.log.clear();
  host_.live = 9;
  host_.limit = 10;  // room for one of the two
  auto r = Emit("order.paid", "e1");
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(), "the server holds 9 live tasks");  // the host's words
  EXPECT_TRUE(host_.log.empty());
  EXPECT_EQ(book_.Find("default", "a")->fired, 0);
  // Its id was not remembered: sent again with room, it is new.
  host_.limit = 11;
  auto retried = Emit("order.paid", "e1");
  ASSERT_OK(retried);
  EXPECT_FALSE(retried->duplicate);
  EXPECT_EQ(retried->event.tasks.size(), 2u);
}

TEST_F(TriggerBookTest, AnOutcomeQueuesAFireThatFirePendingSubmits) {
  Create(OnTask("on-fail", "work", {TaskState::kFailed, TaskState::kCancelled}));
  host_.log.clear();
  book_.TaskEnded(Ended("src-1", "work", TaskState::kFailed));
  ASSERT_TRUE(book_.has_pending());
  EXPECT_TRUE(host_.log.empty());  // only when the engine is ready for it
  book_.FirePending(now_, &host_);
  EXPECT_FALSE(book_.has_pending());
  ASSERT_EQ(host_.submitted.size(), 1u);
  const TaskSpec& spec = host_.submitted[0];
  EXPECT_EQ(spec.queue, "alerts");
  EXPECT_EQ(spec.labels.at("dray.trigger"), "on-fail");
  EXPECT_EQ(spec.labels.at("dray.source"), "src-1");
  const json::value payload = json::parse(spec.payload);
  EXPECT_TRUE(payload.at("input").is_null());  // the template had no payload
  EXPECT_EQ(payload.at("source").at("id"), "src-1");
  EXPECT_EQ(payload.at("source").at("state"), "failed");
  EXPECT_EQ(payload.at("source").at("error"), "boom");
  EXPECT_EQ(book_.Find("default", "on-fail")->fired, 1);
}

TEST_F(TriggerBookTest, AnOutcomeFiresOnlyTriggersOfItsQueueTypeStateAndNamespace) {
  Create(OnTask("any-queue", "", {TaskState::kSucceeded}));
  Create(OnTask("work-only", "work", {TaskState::kSucceeded}));
  TriggerSpec typed = OnTask("other-type", "work", {TaskState::kSucceeded});
  typed.task_type = "report";
  Create(typed);
  Create(OnTask("on-fail", "work", {TaskState::kFailed}));
  TriggerSpec paused = OnTask("paused", "work", {TaskState::kSucceeded});
  paused.paused = true;
  Create(paused);
  TriggerSpec elsewhere = OnTask("elsewhere", "work", {TaskState::kSucceeded});
  elsewhere.ns = "other";
  Create(elsewhere);

  book_.TaskEnded(Ended("src-1", "work", TaskState::kSucceeded));
  book_.TaskEnded(Ended("src-2", "misc", TaskState::kSucceeded));
  DrainPending();
  ASSERT_EQ(host_.submitted.size(), 3u);  // in the order queued
  EXPECT_EQ(host_.submitted[0].labels.at("dray.trigger"), "any-queue");
  EXPECT_EQ(host_.submitted[0].labels.at("dray.source"), "src-1");
  EXPECT_EQ(host_.submitted[1].labels.at("dray.trigger"), "work-only");
  EXPECT_EQ(host_.submitted[2].labels.at("dray.trigger"), "any-queue");
  EXPECT_EQ(host_.submitted[2].labels.at("dray.source"), "src-2");
}

TEST_F(TriggerBookTest, AnOutcomeFireAtTheLiveTaskLimitIsLetGo) {
  Create(OnTask("on-fail", "work", {TaskState::kFailed}));
  book_.TaskEnded(Ended("src-1", "work", TaskState::kFailed));
  host_.limit = 0;
  book_.FirePending(now_, &host_);
  EXPECT_FALSE(book_.has_pending());
  EXPECT_TRUE(host_.submitted.empty());
  EXPECT_EQ(book_.Find("default", "on-fail")->fired, 0);
}

TEST_F(TriggerBookTest, CreateRefusesATakenIdAndDeleteStopsTheTrigger) {
  Create(OnEvent("ship", "order.paid"));
  EXPECT_EQ(host_.log, (std::vector<std::string>{"put trigger ship"}));
  auto again = book_.Create(OnEvent("ship", "order.paid"), now_, &host_);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "a trigger 'ship' exists in namespace 'default'");
  EXPECT_EQ(host_.log.size(), 1u);

  auto made = book_.Create(OnEvent("", "order.paid"), now_, &host_);
  ASSERT_OK(made);
  EXPECT_TRUE(IsValidId(made->spec.id)) << made->spec.id;
  EXPECT_EQ(made->spec.task.ns, "default");
  EXPECT_EQ(made->created_at, now_);

  ASSERT_OK(book_.Delete("default", "ship", &host_));
  EXPECT_EQ(host_.log.back(), "delete trigger ship");
  EXPECT_FALSE(book_.Find("default", "ship").has_value());
  EXPECT_EQ(book_.Delete("default", "ship", &host_).message(),
            "no trigger 'ship' in namespace 'default'");
  auto r = Emit("order.paid");
  ASSERT_OK(r);
  EXPECT_EQ(r->event.tasks.size(), 1u);  // only the one left
  EXPECT_EQ(book_.size(), 1u);
}

TEST_F(TriggerBookTest, ListingPagesByIdWithinANamespace) {
  for (const char* id : {"c", "a", "b"}) Create(OnEvent(id, "x"));
  TriggerSpec other = OnEvent("a", "x");
  other.ns = "other";
  Create(other);
  auto page = book_.List("default", "", 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].spec.id, "a");
  EXPECT_EQ(page[1].spec.id, "b");
  page = book_.List("default", "b", 2);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].spec.id, "c");
  EXPECT_EQ(book_.List("other", "", 10).size(), 1u);
}

TEST_F(TriggerBookTest, ARestoredTriggerFiresAndCountsFromZero) {
  Trigger stored;
  stored.spec = OnTask("on-fail", "work", {TaskState::kFailed});
  stored.fired = 41;  // not stored; a count since the server started
  book_.Restore(stored);
  EXPECT_TRUE(host_.log.empty());
  EXPECT_EQ(book_.Find("default", "on-fail")->fired, 0);
  book_.TaskEnded(Ended("src-1", "work", TaskState::kFailed));
  DrainPending();
  EXPECT_EQ(host_.submitted.size(), 1u);
  EXPECT_EQ(book_.Find("default", "on-fail")->fired, 1);
}

}  // namespace
}  // namespace dray
