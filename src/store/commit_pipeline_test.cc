#include "store/commit_pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <set>
#include <thread>

#include "support/status_assert.h"

namespace dray {
namespace {

// An in-memory store that records commits, can fail them, and can hold the
// first commit until released (so that a test can queue entries behind it).
class FakeStore final : public Store {
 public:
  Status Commit(std::span<const Mutation> mutations) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++commits_;
    batch_sizes_.push_back(mutations.size());
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !hold_; });
    if (fail_next_ || commits_ == fail_at_) {
      fail_next_ = false;
      return Unavailable("injected failure");
    }
    for (const Mutation& m : mutations) order_.push_back(TaskOf(m)->id);
    return Status::Ok();
  }
  Status health() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return health_;
  }
  StatusOr<Task> GetTask(const std::string&, const std::string&) override { return NotFound(""); }
  StatusOr<TaskPage> ListTasks(const TaskQuery&) override { return TaskPage{}; }
  Status ScanLiveTasks(const std::function<void(Task&&)>&) override { return Status::Ok(); }
  Status ScanKeys(TimeMs, const std::function<void(const std::string&, const std::string&,
                                                   const std::string&, TimeMs)>&) override {
    return Status::Ok();
  }
  StatusOr<std::vector<QueueRecord>> LoadQueues() override { return std::vector<QueueRecord>{}; }
  StatusOr<StoreMarks> LoadMarks() override { return StoreMarks{}; }
  StatusOr<std::vector<StateCount>> CountTerminal() override { return std::vector<StateCount>{}; }
  StatusOr<std::vector<ExpiredTask>> FindExpired(TimeMs, std::size_t) override {
    return std::vector<ExpiredTask>{};
  }
  StatusOr<Workflow> GetWorkflow(const std::string&, const std::string&) override {
    return NotFound("");
  }
  StatusOr<WorkflowPage> ListWorkflows(const WorkflowQuery&) override { return WorkflowPage{}; }
  StatusOr<std::vector<Task>> WorkflowTasks(const std::string&, const std::string&) override {
    return std::vector<Task>{};
  }
  StatusOr<std::vector<RunningWorkflow>> LoadRunningWorkflows() override {
    return std::vector<RunningWorkflow>{};
  }
  StatusOr<std::vector<std::pair<std::string, std::string>>> FindExpiredWorkflows(
      TimeMs, std::size_t) override {
    return std::vector<std::pair<std::string, std::string>>{};
  }
  StatusOr<std::vector<Schedule>> LoadSchedules() override { return std::vector<Schedule>{}; }
  StatusOr<Event> GetEvent(const std::string&, const std::string&) override {
    return NotFound("none");
  }
  Status ScanEventIds(TimeMs, const std::function<void(const std::string&, const std::string&,
                                                        TimeMs)>&) override {
    return Status::Ok();
  }
  StatusOr<bool> HasEventsBefore(TimeMs) override { return false; }
  StatusOr<std::vector<Trigger>> LoadTriggers() override { return std::vector<Trigger>{}; }

  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }
  void WaitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void FailNext() {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_ = true;
  }
  // Fails the n-th Commit() call (1-based).
  void FailCommitNumber(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_at_ = n;
  }
  void SetHealth(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    health_ = std::move(s);
  }
  std::vector<std::size_t> batch_sizes() {
    std::lock_guard<std::mutex> lock(mu_);
    return batch_sizes_;
  }
  int commits() {
    std::lock_guard<std::mutex> lock(mu_);
    return commits_;
  }
  std::vector<std::string> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false, entered_ = false, fail_next_ = false;
  Status health_;
  int commits_ = 0;
  int fail_at_ = 0;
  std::vector<std::size_t> batch_sizes_;
  std::vector<std::string> order_;
};

std::vector<Mutation> One(const std::string& id) {
  Task t;
  t.id = id;
  return {mutation::PutTask{std::make_shared<const Task>(std::move(t))}};
}

// Counts callbacks and lets the test wait for a number of them.
struct Latch {
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::vector<Status> statuses;
  CommitPipeline::Done Callback() {
    return [this](const Status& s) {
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      statuses.push_back(s);
      cv.notify_all();
    };
  }
  void Wait(int n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done >= n; });
  }
};

TEST(CommitPipelineTest, CommitsInSubmitOrderAndGroupsWaitingEntries) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{});
  Latch latch;
  store.Hold();
  pipeline.Submit(One("first"), latch.Callback());
  store.WaitEntered();  // the first commit is "syncing"; everything else queues
  for (int i = 0; i < 100; ++i) pipeline.Submit(One("e" + std::to_string(i)), latch.Callback());
  store.Release();
  latch.Wait(101);
  EXPECT_EQ(store.commits(), 2);  // the first alone, the other 100 together
  std::vector<std::string> order = store.order();
  ASSERT_EQ(order.size(), 101u);
  EXPECT_EQ(order[0], "first");
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i + 1)], "e" + std::to_string(i));
  CommitStats stats = pipeline.stats();
  EXPECT_EQ(stats.batches, 2u);
  // Each batch's commit time is in exactly one bucket of the histogram.
  std::uint64_t timed = 0;
  for (std::uint64_t n : stats.commit_seconds) timed += n;
  EXPECT_EQ(timed, 2u);
  EXPECT_GT(stats.commit_ns, 0u);
}

TEST(CommitPipelineTest, ManyConcurrentWritersAreEachAcknowledgedOnce) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{});
  Latch latch;
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 1000; ++i) {
        pipeline.Submit(One(std::to_string(w) + ":" + std::to_string(i)), latch.Callback());
      }
    });
  }
  for (auto& t : writers) t.join();
  latch.Wait(8000);
  std::vector<std::string> order = store.order();
  EXPECT_EQ(order.size(), 8000u);
  EXPECT_EQ(std::set<std::string>(order.begin(), order.end()).size(), 8000u);
  EXPECT_EQ(latch.done, 8000);
  // Per writer, its entries stay in the order it submitted them.
  std::map<std::string, int> last;
  for (const std::string& id : order) {
    std::string w = id.substr(0, id.find(':'));
    int i = std::stoi(id.substr(id.find(':') + 1));
    auto it = last.find(w);
    if (it != last.end()) {
      EXPECT_LT(it->second, i);
    }
    last[w] = i;
  }
}

TEST(CommitPipelineTest, AFailedCommitReportsItsErrorToEveryEntryOfTheBatch) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{});
  Latch latch;
  store.Hold();
  pipeline.Submit(One("ok"), latch.Callback());
  store.WaitEntered();
  store.FailNext();  // applies to the first commit, which is held
  for (int i = 0; i < 5; ++i) pipeline.Submit(One("later"), latch.Callback());
  store.Release();
  latch.Wait(6);
  EXPECT_EQ(latch.statuses[0].code(), StatusCode::kUnavailable);
  for (int i = 1; i < 6; ++i) EXPECT_OK(latch.statuses[static_cast<std::size_t>(i)]);
  EXPECT_EQ(pipeline.stats().failures, 1u);
}

TEST(CommitPipelineTest, AnEmptyEntryIsABarrier) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{});
  Latch latch;
  store.Hold();
  pipeline.Submit(One("a"), latch.Callback());
  store.WaitEntered();
  std::atomic<bool> barrier_done{false};
  pipeline.Submit({}, [&](const Status&) {
    EXPECT_EQ(store.order().size(), 1u);  // "a" is durable before the barrier answers
    barrier_done = true;
  });
  store.Release();
  latch.Wait(1);
  pipeline.Stop();
  EXPECT_TRUE(barrier_done.load());
}

TEST(CommitPipelineTest, StopDrainsThenRefuses) {
  FakeStore store;
  auto pipeline = std::make_unique<CommitPipeline>(&store, CommitOptions{});
  Latch latch;
  for (int i = 0; i < 50; ++i) pipeline->Submit(One(std::to_string(i)), latch.Callback());
  pipeline->Stop();
  EXPECT_EQ(latch.done, 50);
  EXPECT_EQ(store.order().size(), 50u);
  Status after;
  pipeline->Submit(One("late"), [&](const Status& s) { after = s; });
  EXPECT_EQ(after.code(), StatusCode::kUnavailable);
}

TEST(CommitPipelineTest, BatchesRespectTheMutationBound) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{10, std::chrono::microseconds(0)});
  Latch latch;
  store.Hold();
  pipeline.Submit(One("first"), latch.Callback());
  store.WaitEntered();
  for (int i = 0; i < 35; ++i) pipeline.Submit(One(std::to_string(i)), latch.Callback());
  store.Release();
  latch.Wait(36);
  EXPECT_EQ(store.commits(), 5);  // 1, then 10 + 10 + 10 + 5
}

TEST(CommitPipelineTest, ConcurrentWritersShareFewCommitsAndAreAcknowledgedExactlyOnce) {
  constexpr int kWriters = 8;
  constexpr int kPerWriter = 1000;
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{});
  std::vector<std::atomic<int>> acks(kWriters * kPerWriter);
  Latch latch;
  // The first commit is held until every writer has queued everything, so
  // all 8000 entries are waiting at once: group commit must take them
  // together, however the threads were scheduled.
  store.Hold();
  pipeline.Submit(One("first"), latch.Callback());
  store.WaitEntered();
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        int slot = w * kPerWriter + i;
        pipeline.Submit(One(std::to_string(w) + ":" + std::to_string(i)), [&, slot](const Status& s) {
          EXPECT_OK(s);
          acks[static_cast<std::size_t>(slot)].fetch_add(1);
          latch.Callback()(s);
        });
      }
    });
  }
  for (auto& t : writers) t.join();
  store.Release();
  latch.Wait(kWriters * kPerWriter + 1);
  for (const auto& a : acks) ASSERT_EQ(a.load(), 1);
  EXPECT_EQ(store.commits(), 2);  // "first", then all 8000 together
  EXPECT_EQ(store.batch_sizes(), (std::vector<std::size_t>{1, kWriters * kPerWriter}));
  CommitStats stats = pipeline.stats();
  EXPECT_EQ(stats.batches, 2u);
  EXPECT_EQ(stats.entries, static_cast<std::uint64_t>(kWriters * kPerWriter + 1));
  EXPECT_EQ(stats.mutations, stats.entries);
  EXPECT_EQ(stats.failures, 0u);
}

TEST(CommitPipelineTest, CallbacksRunInSubmitOrder) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{4, std::chrono::microseconds(0)});
  std::mutex mu;
  std::vector<int> order;
  Latch latch;
  store.Hold();
  pipeline.Submit(One("first"), latch.Callback());
  store.WaitEntered();
  for (int i = 0; i < 20; ++i) {
    pipeline.Submit(i % 5 == 0 ? std::vector<Mutation>{} : One(std::to_string(i)), [&, i](const Status&) {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
      latch.Callback()(Status::Ok());
    });
  }
  store.Release();
  latch.Wait(21);
  std::vector<int> want(20);
  for (int i = 0; i < 20; ++i) want[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(order, want);
}

TEST(CommitPipelineTest, ABarrierInAFailedBatchReportsTheFailure) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{});
  Latch latch;
  store.FailCommitNumber(2);
  store.Hold();
  pipeline.Submit(One("first"), latch.Callback());
  store.WaitEntered();
  pipeline.Submit(One("doomed"), latch.Callback());
  pipeline.Submit({}, latch.Callback());  // same batch as "doomed"
  store.Release();
  latch.Wait(3);
  EXPECT_OK(latch.statuses[0]);
  EXPECT_EQ(latch.statuses[1].code(), StatusCode::kUnavailable);
  EXPECT_EQ(latch.statuses[2].code(), StatusCode::kUnavailable);
  EXPECT_EQ(pipeline.stats().failures, 1u);
}

TEST(CommitPipelineTest, ABarrierAloneReportsABrokenStore) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{});
  store.SetHealth(Unavailable("disk gone"));
  Latch latch;
  pipeline.Submit({}, latch.Callback());
  latch.Wait(1);
  EXPECT_EQ(latch.statuses[0].code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.commits(), 0);  // a barrier alone opens no transaction
}

TEST(CommitPipelineTest, AFullBatchDoesNotWaitForMaxWait) {
  FakeStore store;
  // An hour of max_wait: the test would hang if a full batch waited for it.
  CommitPipeline pipeline(&store, CommitOptions{5, std::chrono::hours(1)});
  Latch latch;
  for (int i = 0; i < 5; ++i) pipeline.Submit(One(std::to_string(i)), latch.Callback());
  latch.Wait(5);
  EXPECT_EQ(store.commits(), 1);
}

TEST(CommitPipelineTest, StopEndsAMaxWaitAndCommitsWhatIsQueued) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{1000, std::chrono::hours(1)});
  Latch latch;
  pipeline.Submit(One("a"), latch.Callback());
  pipeline.Submit(One("b"), latch.Callback());
  pipeline.Stop();
  EXPECT_EQ(latch.done, 2);
  EXPECT_EQ(store.order(), (std::vector<std::string>{"a", "b"}));
}

TEST(CommitPipelineTest, StopFromACallbackAndFromSeveralThreadsIsSafe) {
  FakeStore store;
  CommitPipeline pipeline(&store, CommitOptions{});
  Latch latch;
  pipeline.Submit(One("a"), [&](const Status& s) {
    pipeline.Stop();  // returns at once on the pipeline's own thread
    latch.Callback()(s);
  });
  latch.Wait(1);
  std::thread other([&] { pipeline.Stop(); });
  pipeline.Stop();
  other.join();
  Status late;
  pipeline.Submit(One("late"), [&](const Status& s) { late = s; });
  EXPECT_EQ(late.code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace dray
