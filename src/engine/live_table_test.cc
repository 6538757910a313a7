#include "engine/live_table.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine/engine_records.h"

namespace dray {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

class LiveTableTest : public ::testing::Test {
 protected:
  LiveTableTest() {
    queue_.ns = "ns1";
    queue_.name = "q";
  }

  Task Plain(std::string type = "t") {
    Task t;
    t.id = ids_.Next(kT0);
    t.ns = queue_.ns;
    t.queue = queue_.name;
    t.type = std::move(type);
    t.payload = R"({"n":1})";
    t.run_at = t.created_at = t.updated_at = kT0;
    t.seq = ++seq_;
    return t;
  }

  // What the engine links after Compact: the concurrency key's group.
  void LinkKey(Live* l, const Task& t) {
    auto it = queue_.keys.try_emplace(t.concurrency_key).first;
    it->second.key = &it->first;
    it->second.members.insert(l);
    l->extra->group = &it->second;
  }

  IdGenerator ids_;
  std::uint64_t seq_ = 0;
  QueueState queue_;
  LiveTable table_;
};

TEST_F(LiveTableTest, FindsEveryInsertedTaskAcrossGrowthAndForgetsRemovedOnes) {
  std::vector<Live*> all;
  for (int i = 0; i < 10'000; ++i) {
    LivePtr l = table_.Compact(Plain(), &queue_);
    all.push_back(l.get());
    table_.Insert(std::move(l));
  }
  EXPECT_EQ(table_.size(), 10'000u);
  for (Live* l : all) EXPECT_EQ(table_.Find(l->id), l);
  for (std::size_t i = 0; i < all.size(); i += 2) {
    const IdBytes id = all[i]->id;
    LivePtr gone = table_.Remove(all[i]);
    EXPECT_EQ(gone.get(), all[i]);
    EXPECT_EQ(gone->next, nullptr);
    EXPECT_EQ(table_.Find(id), nullptr);
  }
  EXPECT_EQ(table_.size(), 5'000u);
  for (std::size_t i = 1; i < all.size(); i += 2) EXPECT_EQ(table_.Find(all[i]->id), all[i]);
}

TEST_F(LiveTableTest, AnEmptyTableFindsNothing) {
  EXPECT_EQ(table_.Find(*ParseId(ids_.Next(kT0))), nullptr);
  EXPECT_EQ(table_.size(), 0u);
}

TEST_F(LiveTableTest, APlainTaskHasNoSideRecordsAndItsPayloadInline) {
  Task t = Plain();
  LivePtr l = table_.Compact(t, &queue_);
  EXPECT_EQ(l->extra, nullptr);
  EXPECT_EQ(l->run, nullptr);
  EXPECT_EQ(l->payload(), t.payload);
  EXPECT_EQ(l->deps(), nullptr);
  EXPECT_EQ(l->group(), nullptr);
  EXPECT_EQ(LiveTable::Expand(l.get()), t);
}

TEST_F(LiveTableTest, ExpandGivesBackEveryFieldCompactTook) {
  Task t = Plain();
  t.payload = std::string("bytes \0 and more", 16);
  t.priority = -3;
  t.run_at = kT0 + 5;
  t.max_attempts = 7;
  t.backoff = Backoff{10, 1000, 3.0, 0.5};
  t.timeout_ms = 30'000;
  t.lease_ms = 4'000;
  t.key = "k1";
  t.labels = {{"a", "1"}, {std::string("b\0c", 3), ""}, {"", "empty key"}};
  t.concurrency_key = "tenant-1";
  t.concurrency_limit = 2;
  t.placement.resources = {{"cpu", 500}};
  t.placement.affinity_key = "aff";
  t.depends_on = {ids_.Next(kT0), ids_.Next(kT0)};
  t.on_dep_failure = DepFailure::kContinue;
  t.workflow = ids_.Next(kT0);
  t.node = "extract";
  t.state = TaskState::kRunning;
  t.attempts = 2;
  t.result = R"({"partial":true})";
  t.error = "boom";
  t.lease_token = 99;
  t.lease_expires_at = kT0 + 60'000;
  t.worker = "w1";
  t.cancel_requested = true;
  t.history = {Attempt{1, "w0", kT0, kT0 + 1, AttemptOutcome::kFailed, "boom"},
               Attempt{2, "w1", kT0 + 2, 0, AttemptOutcome::kRunning, ""}};
  LivePtr l = table_.Compact(t, &queue_);
  LinkKey(l.get(), t);
  ASSERT_NE(l->deps(), nullptr);
  EXPECT_EQ(l->deps()->workflow, nullptr);  // the engine links it
  EXPECT_EQ(l->deps()->depends_on.size(), 2u);
  EXPECT_EQ(AttemptDeadline(l.get()), kT0 + 2 + 30'000);
  EXPECT_EQ(LiveTable::Expand(l.get()), t);
}

TEST_F(LiveTableTest, AbsorbTakesBackTheTransitionsFieldsAndDropsAnEmptyRunState) {
  Task t = Plain();
  LivePtr l = table_.Compact(t, &queue_);
  t.state = TaskState::kRunning;
  t.attempts = 1;
  t.worker = "w1";
  t.lease_token = 5;
  t.lease_expires_at = kT0 + 1000;
  t.updated_at = kT0 + 1;
  LiveTable::Absorb(l.get(), t);
  ASSERT_NE(l->run, nullptr);
  EXPECT_EQ(l->lease_token(), 5u);
  EXPECT_EQ(LiveTable::Expand(l.get()), t);

  Task back = Plain();
  back.id = t.id;
  back.seq = t.seq;
  back.updated_at = kT0 + 2;
  LiveTable::Absorb(l.get(), back);
  EXPECT_EQ(l->run, nullptr);
  EXPECT_EQ(l->state(), TaskState::kReady);
}

TEST_F(LiveTableTest, TasksOfOneTypeAndBackoffShareOneInternedCopy) {
  LivePtr a = table_.Compact(Plain("email"), &queue_);
  LivePtr b = table_.Compact(Plain("email"), &queue_);
  EXPECT_EQ(a->type, b->type);
  EXPECT_EQ(a->backoff, b->backoff);
  EXPECT_EQ(a->extra, nullptr);
}

TEST_F(LiveTableTest, PastTheInternCapATaskKeepsItsOwnType) {
  for (std::size_t i = 0; i < LiveTable::kMaxInternedTypes; ++i) {
    ASSERT_NE(table_.InternType("type-" + std::to_string(i)), nullptr);
  }
  EXPECT_EQ(table_.InternType("one-too-many"), nullptr);
  EXPECT_NE(table_.InternType("type-0"), nullptr);  // known ones still resolve
  Task t = Plain("one-too-many");
  LivePtr l = table_.Compact(t, &queue_);
  ASSERT_NE(l->extra, nullptr);
  EXPECT_EQ(l->type, &l->extra->type);
  EXPECT_EQ(LiveTable::Expand(l.get()), t);
}

TEST_F(LiveTableTest, PastTheInternCapATaskKeepsItsOwnBackoff) {
  for (std::size_t i = 0; i < LiveTable::kMaxInternedBackoffs; ++i) {
    ASSERT_NE(table_.InternBackoff(Backoff{static_cast<std::int64_t>(i) + 1, 10, 2, 0}), nullptr);
  }
  Task t = Plain();
  t.backoff = Backoff{5000, 9000, 1.5, 0.1};
  LivePtr l = table_.Compact(t, &queue_);
  ASSERT_NE(l->extra, nullptr);
  EXPECT_EQ(l->backoff, l->extra->backoff.get());
  EXPECT_EQ(LiveTable::Expand(l.get()), t);
}

TEST_F(LiveTableTest, ReadyOrderIsPriorityThenSubmitOrder) {
  LivePtr a = table_.Compact(Plain(), &queue_);
  LivePtr b = table_.Compact(Plain(), &queue_);
  Task urgent = Plain();
  urgent.priority = -1;
  LivePtr c = table_.Compact(urgent, &queue_);
  ReadyHeap heap;
  heap.push(a.get());
  heap.push(b.get());
  heap.push(c.get());
  EXPECT_EQ(heap.pop(), c.get());
  EXPECT_EQ(heap.pop(), a.get());
  EXPECT_EQ(heap.pop(), b.get());
}

}  // namespace
}  // namespace dray
