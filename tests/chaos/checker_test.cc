// The checker must catch each kind of violation it names, and pass a clean
// history: otherwise a chaos run that finds nothing proves nothing.
#include "chaos/checker.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>

#include "support/status_assert.h"

namespace dray::chaos {
namespace {

Op Submit(const std::string& key, Outcome o, const std::string& id = "") {
  Op op;
  op.kind = OpKind::kSubmit;
  op.outcome = o;
  op.key = key;
  op.id = id;
  op.client = "s";
  return op;
}

Op Lease(const std::string& id, std::uint64_t token, int attempt, std::int64_t at,
         const std::string& worker = "w1") {
  Op op;
  op.kind = OpKind::kLease;
  op.outcome = Outcome::kOk;
  op.id = id;
  op.token = token;
  op.attempt = attempt;
  op.client = worker;
  op.invoked_us = at - 1;
  op.returned_us = at;
  return op;
}

Op Outcome_(OpKind kind, const std::string& id, std::uint64_t token, Outcome o, std::int64_t at,
            bool retry = true) {
  Op op;
  op.kind = kind;
  op.outcome = o;
  op.id = id;
  op.token = token;
  op.retry = retry;
  op.client = "w1";
  op.invoked_us = at;
  op.returned_us = at + 1;
  return op;
}

FinalAttempt A(int n, const std::string& outcome, const std::string& worker = "w1") {
  std::string start = "2026-11-30T00:00:0" + std::to_string(n) + ".000Z";
  std::string end = outcome == "running" ? "" : "2026-11-30T00:00:0" + std::to_string(n) + ".500Z";
  return FinalAttempt{n, worker, outcome, start, end};
}

FinalTask T(const std::string& id, const std::string& key, const std::string& state,
            std::vector<FinalAttempt> h, int max_attempts = 5) {
  FinalTask t;
  t.id = id;
  t.key = key;
  t.state = state;
  t.attempts = static_cast<int>(h.size());
  t.max_attempts = max_attempts;
  t.history = std::move(h);
  return t;
}

// A clean run: one task retried after an expiry, one completed.
struct Clean {
  std::vector<Op> ops = {Submit("k1", Outcome::kOk, "t1"),
                         Submit("k2", Outcome::kUnknown),
                         Submit("k2", Outcome::kOk, "t2"),
                         Lease("t1", 10, 1, 100),
                         Lease("t1", 12, 2, 300, "w2"),
                         Outcome_(OpKind::kComplete, "t1", 10, Outcome::kRefused, 400),
                         Outcome_(OpKind::kComplete, "t1", 12, Outcome::kOk, 500),
                         Lease("t2", 11, 1, 200),
                         Outcome_(OpKind::kHeartbeat, "t2", 11, Outcome::kOk, 250),
                         Outcome_(OpKind::kFail, "t2", 11, Outcome::kOk, 260, false)};
  std::vector<FinalTask> tasks = {T("t1", "k1", "succeeded", {A(1, "expired"), A(2, "succeeded", "w2")}),
                                  T("t2", "k2", "failed", {A(1, "failed")})};
};

TEST(ChaosCheckerTest, ACleanHistoryPassesAndCountsTheDuplicate) {
  Clean c;
  Report r = Check(c.ops, c.tasks);
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.acknowledged_submits, 2u);
  EXPECT_EQ(r.duplicates, 1u);  // t1 ran again after w1's healthy attempt expired
  CheckOptions faulty;
  faulty.faulty_workers = {"w1"};
  EXPECT_EQ(Check(c.ops, c.tasks, faulty).duplicates, 0u);
}

TEST(ChaosCheckerTest, FindsALostAcknowledgedSubmit) {
  Clean c;
  c.tasks.erase(c.tasks.begin());
  Report r = Check(c.ops, c.tasks);
  ASSERT_EQ(r.lost.size(), 1u) << r.Summary();
  EXPECT_NE(r.lost[0].find("t1"), std::string::npos);
}

TEST(ChaosCheckerTest, AnAcknowledgedTaskThatNeverFinishesIsLostAndStuck) {
  Clean c;
  c.tasks[1] = T("t2", "k2", "ready", {});
  c.ops.pop_back();  // no accepted final fail
  Report r = Check(c.ops, c.tasks);
  EXPECT_EQ(r.lost.size(), 1u) << r.Summary();
  EXPECT_EQ(r.stuck.size(), 1u);
}

TEST(ChaosCheckerTest, FindsUnexpectedTasks) {
  Clean c;
  c.tasks.push_back(T("t9", "nobody", "succeeded", {A(1, "succeeded")}));
  c.ops.push_back(Submit("k3", Outcome::kRefused));
  c.tasks.push_back(T("t3", "k3", "succeeded", {A(1, "succeeded")}));
  c.tasks.push_back(T("t4", "k1", "succeeded", {A(1, "succeeded")}));
  Report r = Check(c.ops, c.tasks);
  EXPECT_EQ(r.unexpected.size(), 3u) << r.Summary();
}

TEST(ChaosCheckerTest, FindsAStaleAcceptedComplete) {
  Clean c;
  // The old token's complete is accepted after the newer lease had returned.
  c.ops[5].outcome = Outcome::kOk;
  Report r = Check(c.ops, c.tasks);
  ASSERT_EQ(r.stale_accepted.size(), 1u) << r.Summary();
  EXPECT_NE(r.stale_accepted[0].find("token 10"), std::string::npos);
  // A call made before the newer lease returned is not stale by this rule.
  c.ops[5].invoked_us = 250;
  EXPECT_TRUE(Check(c.ops, c.tasks).stale_accepted.empty());
}

TEST(ChaosCheckerTest, FindsAStaleAcceptedHeartbeat) {
  Clean c;
  c.ops.push_back(Outcome_(OpKind::kHeartbeat, "t1", 10, Outcome::kOk, 350));
  EXPECT_EQ(Check(c.ops, c.tasks).stale_accepted.size(), 1u);
}

TEST(ChaosCheckerTest, FindsIllegalHistories) {
  auto illegal = [](std::vector<FinalAttempt> h, const std::string& state, int max = 5) {
    std::vector<Op> ops = {Submit("k", Outcome::kOk, "t")};
    return Check(ops, {T("t", "k", state, std::move(h), max)}).illegal.size();
  };
  EXPECT_EQ(illegal({A(1, "failed"), A(2, "succeeded")}, "succeeded"), 0u);
  EXPECT_GE(illegal({A(1, "succeeded"), A(2, "succeeded")}, "succeeded"), 1u);  // ran after success
  EXPECT_GE(illegal({A(2, "succeeded")}, "succeeded"), 1u);                     // numbering
  EXPECT_GE(illegal({A(1, "failed")}, "succeeded"), 1u);                        // state vs attempt
  EXPECT_GE(illegal({A(1, "running")}, "ready"), 1u);
  EXPECT_GE(illegal({A(1, "failed"), A(2, "failed")}, "failed", 1), 1u);  // past max_attempts
  auto backwards = std::vector<FinalAttempt>{A(1, "expired"), A(2, "succeeded")};
  std::swap(backwards[0].started_at, backwards[1].started_at);
  std::swap(backwards[0].ended_at, backwards[1].ended_at);
  backwards[0].number = 1;
  backwards[1].number = 2;
  EXPECT_GE(illegal(backwards, "succeeded"), 1u);
  CheckOptions no_times;
  no_times.check_times = false;
  std::vector<Op> ops = {Submit("k", Outcome::kOk, "t")};
  EXPECT_TRUE(Check(ops, {T("t", "k", "succeeded", backwards)}, no_times).ok());
}

TEST(ChaosCheckerTest, FindsAnAttemptLeasedTwiceAndTokensThatDoNotGrow) {
  Clean c;
  c.ops.push_back(Lease("t1", 13, 2, 310, "w3"));  // attempt 2 again, another token
  EXPECT_GE(Check(c.ops, c.tasks).illegal.size(), 1u);
  Clean d;
  d.ops[4].token = 9;  // attempt 2 under a smaller token than attempt 1
  d.ops[6].token = 9;
  EXPECT_GE(Check(d.ops, d.tasks).illegal.size(), 1u);
}

TEST(ChaosCheckerTest, AnAcceptedCompleteMustEndTheTask) {
  Clean c;
  c.tasks[0] = T("t1", "k1", "ready", {A(1, "expired"), A(2, "expired", "w2")});
  Report r = Check(c.ops, c.tasks);
  EXPECT_GE(r.illegal.size(), 1u) << r.Summary();
}

TEST(ChaosCheckerTest, HistoriesRoundTripThroughAFile) {
  Clean c;
  History h;
  for (const Op& op : c.ops) h.Record(op);
  const std::string path = ::testing::TempDir() + "/history.jsonl";
  ASSERT_OK(h.Save(path));
  auto loaded = History::Load(path);
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->size(), c.ops.size());
  for (std::size_t i = 0; i < c.ops.size(); ++i) {
    EXPECT_EQ((*loaded)[i].kind, c.ops[i].kind);
    EXPECT_EQ((*loaded)[i].outcome, c.ops[i].outcome);
    EXPECT_EQ((*loaded)[i].id, c.ops[i].id);
    EXPECT_EQ((*loaded)[i].token, c.ops[i].token);
    EXPECT_EQ((*loaded)[i].retry, c.ops[i].retry);
    EXPECT_EQ((*loaded)[i].returned_us, c.ops[i].returned_us);
  }
  EXPECT_TRUE(Check(*loaded, c.tasks).ok());
  std::remove(path.c_str());
}

TEST(ChaosCheckerTest, ParsesTheApiTaskShape) {
  auto v = boost::json::parse(R"({"id":"t","key":"k","state":"succeeded","attempts":1,"max_attempts":3,
    "history":[{"number":1,"worker":"w","started_at":"a","ended_at":"b","outcome":"succeeded","error":null}]})");
  auto t = ParseFinalTask(v);
  ASSERT_OK(t);
  EXPECT_EQ(t->history.size(), 1u);
  EXPECT_EQ(t->history[0].outcome, "succeeded");
  EXPECT_FALSE(ParseFinalTask(boost::json::parse("[1]")).ok());
}

}  // namespace
}  // namespace dray::chaos
