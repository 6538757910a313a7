#include "store/commit_pipeline.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <set>
#include <thread>

namespace dray {
namespace {

// An in-memory store that records commits, can fail them, and can hold the
// first commit until released (so that a test can queue entries behind it).
class FakeStore final : public Store {
 public:
  Status Commit(std::span<const Mutation> mutations) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++commits_;
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !hold_; });
    if (fail_next_) {
      fail_next_ = false;
      return Unavailable("injected failure");
    }
    for (const Mutation& m : mutations) order_.push_back(m.task->id);
    return Status::Ok();
  }
  Status health() const override { return Status::Ok(); }
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
  StatusOr<std::vector<std::pair<std::string, std::string>>> FindExpired(TimeMs, std::size_t) override {
    return std::vector<std::pair<std::string, std::string>>{};
  }

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
  int commits() {
    std::lock_guard<std::mutex> lock(mu_);
    return commits_;
  }
  std::vector<std::string> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false, entered_ = false, fail_next_ = false;
  int commits_ = 0;
  std::vector<std::string> order_;
};

std::vector<Mutation> One(const std::string& id) {
  Task t;
  t.id = id;
  return {Mutation::PutTask(std::make_shared<const Task>(std::move(t)))};
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
  EXPECT_EQ(pipeline.stats().batches, 2u);
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
  for (int i = 1; i < 6; ++i) EXPECT_TRUE(latch.statuses[static_cast<std::size_t>(i)].ok());
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

}  // namespace
}  // namespace dray
