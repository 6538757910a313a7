#include "dray/worker.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <deque>
#include <thread>

#include "core/json_codec.h"
#include "core/time_format.h"
#include "support/fake_http_server.h"
#include "support/status_assert.h"
#include "support/wait.h"

namespace dray {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using testing::ErrorReply;
using testing::FakeHttpServer;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::Json;
using testing::WaitFor;

// Enough of a Dray server for the worker: hands out queued tasks on
// /v1/leases (holding a poll briefly when there are none), answers
// heartbeats as told and records every ack item.
class FakeDray {
 public:
  struct AckItem {
    std::string id, lease;
    bool success = false;
    std::string result, error;
    bool retry = true;
  };
  enum class Heartbeat { kOk, kCancel, kConflict };

  FakeDray() : server_([this](const FakeRequest& r) { return Handle(r); }) {}
  ~FakeDray() {
    // Release held long-polls before server_ joins its connection threads.
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    cv_.notify_all();
  }

  std::string url() const { return server_.url(); }
  const FakeHttpServer& server() const { return server_; }

  void Add(const std::string& id, const std::string& type, const std::string& payload = "null") {
    std::lock_guard<std::mutex> lock(mu_);
    Task t;
    t.id = id;
    t.type = type;
    t.payload = payload;
    t.state = TaskState::kRunning;
    t.attempts = 1;
    t.created_at = t.updated_at = 1'700'000'000'000;
    pending_.push_back(t);
    cv_.notify_all();
  }
  void SetHeartbeat(Heartbeat h) { heartbeat_ = h; }
  // How long an empty lease poll is held at most (10 s unless told).
  void SetPollCap(milliseconds cap) { poll_cap_ms_ = cap.count(); }
  void SetAckStatus(int status) { ack_status_ = status; }

  std::vector<AckItem> acks() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acks_;
  }
  std::vector<std::size_t> ack_batch_sizes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batch_sizes_;
  }
  std::size_t leased() const {
    std::lock_guard<std::mutex> lock(mu_);
    return leased_;
  }

 private:
  FakeResponse Handle(const FakeRequest& r) {
    json::value body = r.json();
    if (r.path == "/v1/leases") return Lease(body);
    if (r.path == "/v1/acks") return Ack(body);
    if (r.path.ends_with("/heartbeat")) {
      switch (heartbeat_.load()) {
        case Heartbeat::kOk:
          return Json(200, R"({"expires_at":"2030-01-01T00:00:00Z","cancel_requested":false})");
        case Heartbeat::kCancel:
          return Json(200, R"({"expires_at":"2030-01-01T00:00:00Z","cancel_requested":true})");
        case Heartbeat::kConflict:
          return ErrorReply(409, "aborted", "lease is stale");
      }
    }
    return ErrorReply(404, "not_found", "no route " + r.path);
  }

  FakeResponse Lease(const json::value& body) {
    std::size_t max = static_cast<std::size_t>(body.at("max").as_int64());
    auto wait = milliseconds(std::min<std::int64_t>(body.at("wait_ms").as_int64(), poll_cap_ms_));
    std::unique_lock<std::mutex> lock(mu_);
    max_asked_.push_back(max);
    cv_.wait_for(lock, wait, [&] { return !pending_.empty() || closing_; });
    json::array tasks;
    while (!pending_.empty() && tasks.size() < max) {
      json::object t = EncodeTask(pending_.front());
      t["lease"] = json::object{{"token", "tok-" + pending_.front().id},
                                {"expires_at", FormatRfc3339(1'700'000'030'000)}};
      tasks.push_back(std::move(t));
      pending_.pop_front();
      ++leased_;
    }
    return Json(200, json::serialize(json::object{{"tasks", std::move(tasks)}}));
  }

  FakeResponse Ack(const json::value& body) {
    if (ack_status_ != 200) return ErrorReply(ack_status_, "unavailable", "store is away");
    std::lock_guard<std::mutex> lock(mu_);
    json::array results;
    const json::array& items = body.at("acks").as_array();
    batch_sizes_.push_back(items.size());
    for (const json::value& v : items) {
      const json::object& o = v.as_object();
      AckItem a;
      a.id = o.at("id").as_string();
      a.lease = o.at("lease").as_string();
      a.success = !o.contains("error");  // as the server decides: an error makes a failure
      if (o.contains("result")) a.result = json::serialize(o.at("result"));
      if (o.contains("error")) a.error = o.at("error").as_string();
      if (o.contains("retry")) a.retry = o.at("retry").as_bool();
      acks_.push_back(a);
      results.push_back(json::object{{"id", a.id}, {"ok", true},
                                     {"state", a.success ? "succeeded" : "failed"}});
    }
    return Json(200, json::serialize(json::object{{"results", std::move(results)}}));
  }

 public:
  std::vector<std::size_t> max_asked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return max_asked_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> pending_;           // guarded by mu_
  std::vector<AckItem> acks_;          // guarded by mu_
  std::vector<std::size_t> batch_sizes_;  // guarded by mu_
  std::vector<std::size_t> max_asked_;    // guarded by mu_
  std::size_t leased_ = 0;             // guarded by mu_
  bool closing_ = false;               // guarded by mu_
  std::atomic<Heartbeat> heartbeat_{Heartbeat::kOk};
  std::atomic<std::int64_t> poll_cap_ms_{10'000};
  std::atomic<int> ack_status_{200};
  FakeHttpServer server_;  // last: its threads call Handle(), so it goes first
};

// Runs a worker on its own thread; stops and joins it on destruction.
class RunningWorker {
 public:
  RunningWorker(const FakeDray& dray, WorkerOptions options,
                const std::function<void(Worker&)>& setup) {
    ClientOptions c;
    c.server = dray.url();
    worker_ = std::make_unique<Worker>(c, std::move(options));
    setup(*worker_);
    thread_ = std::thread([this] { status_ = worker_->Run(); });
  }
  ~RunningWorker() { StopAndJoin(); }
  void StopAndJoin(StopMode mode = StopMode::kFinishRunning) {
    if (!thread_.joinable()) return;
    worker_->Stop(mode);
    thread_.join();
  }
  Worker& worker() { return *worker_; }
  const Status& status() const { return status_; }

 private:
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
  Status status_;
};

WorkerOptions Options(int concurrency = 4) {
  WorkerOptions o;
  o.name = "test-worker";
  o.queues = {"q"};
  o.concurrency = concurrency;
  o.poll_wait = milliseconds(200);
  return o;
}

TEST(WorkerTest, EveryLeasedTaskGetsExactlyOneOutcome) {
  FakeDray dray;
  constexpr int kTasks = 300;
  for (int i = 0; i < kTasks; ++i) dray.Add("t" + std::to_string(i), i % 3 ? "ok" : "bad");
  RunningWorker w(dray, Options(4), [](Worker& worker) {
    worker.Handle("ok", [](TaskContext& ctx) { return R"({"id":")" + ctx.task().id + R"("})"; });
    worker.Handle("bad", [](TaskContext&) -> std::string { throw std::runtime_error("boom"); });
  });
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() >= kTasks; }));
  w.StopAndJoin();
  ASSERT_OK(w.status());

  std::map<std::string, int> seen;
  for (const auto& a : dray.acks()) {
    ++seen[a.id];
    EXPECT_EQ(a.lease, "tok-" + a.id);
    int n = std::stoi(a.id.substr(1));
    if (n % 3) {
      EXPECT_TRUE(a.success) << a.id;
      EXPECT_EQ(json::parse(a.result).at("id").as_string(), a.id);
    } else {
      EXPECT_FALSE(a.success) << a.id;
      EXPECT_EQ(a.error, "boom");
      EXPECT_TRUE(a.retry);
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kTasks));
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
  auto st = w.worker().stats();
  EXPECT_EQ(st.leased, static_cast<std::uint64_t>(kTasks));
  EXPECT_EQ(st.succeeded + st.failed + st.dropped, st.leased);
  EXPECT_EQ(st.failed, static_cast<std::uint64_t>(kTasks / 3));
}

TEST(WorkerTest, LeasesNoMoreThanItsFreeSlots) {
  FakeDray dray;
  for (int i = 0; i < 20; ++i) dray.Add("t" + std::to_string(i), "ok");
  WorkerOptions o = Options(3);
  RunningWorker w(dray, o, [](Worker& worker) {
    worker.Handle("ok", [](TaskContext&) { return std::string("null"); });
  });
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() >= 20; }));
  w.StopAndJoin();
  for (std::size_t max : dray.max_asked()) {
    EXPECT_GE(max, 1u);
    EXPECT_LE(max, 3u);
  }
}

// With prefetch the worker holds more tasks than handler threads: one slow
// handler thread, and still leases of up to concurrency + prefetch, never
// more, and every task runs once.
TEST(WorkerTest, PrefetchLeasesAheadOfTheHandlersUpToItsBound) {
  FakeDray dray;
  constexpr int kTasks = 200;
  for (int i = 0; i < kTasks; ++i) dray.Add("t" + std::to_string(i), "ok");
  WorkerOptions o = Options(1);
  o.lease_batch = 64;
  o.prefetch = 40;
  RunningWorker w(dray, o, [](Worker& worker) {
    worker.Handle("ok", [](TaskContext&) { return std::string("null"); });
  });
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() >= kTasks; }));
  w.StopAndJoin();
  std::size_t largest = 0;
  for (std::size_t max : dray.max_asked()) {
    EXPECT_LE(max, 41u);  // concurrency + prefetch
    largest = std::max(largest, max);
  }
  EXPECT_GT(largest, 1u);  // it did lease ahead
  // Far fewer lease calls than tasks: batches, not one call per free thread.
  EXPECT_LT(dray.max_asked().size(), static_cast<std::size_t>(kTasks / 4));
  EXPECT_EQ(w.worker().stats().succeeded, static_cast<std::uint64_t>(kTasks));
}

TEST(WorkerTest, LeaseBatchCapsEachLeaseCall) {
  FakeDray dray;
  for (int i = 0; i < 10; ++i) dray.Add("t" + std::to_string(i), "ok");
  WorkerOptions o = Options(4);
  o.lease_batch = 1;
  RunningWorker w(dray, o, [](Worker& worker) {
    worker.Handle("ok", [](TaskContext&) { return std::string("null"); });
  });
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() >= 10; }));
  w.StopAndJoin();
  for (std::size_t max : dray.max_asked()) EXPECT_EQ(max, 1u);
}

TEST(WorkerTest, AcksAreSentInBatchesOfAtMostAckBatch) {
  FakeDray dray;
  WorkerOptions o = Options(4);
  o.ack_batch = 10;
  o.ack_linger = milliseconds(10'000);  // only a full batch (or Stop) flushes
  RunningWorker w(dray, o, [](Worker& worker) {
    worker.Handle("ok", [](TaskContext&) { return std::string("1"); });
  });
  for (int i = 0; i < 25; ++i) dray.Add("t" + std::to_string(i), "ok");
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() >= 20; }));
  auto sizes = dray.ack_batch_sizes();
  EXPECT_EQ(sizes, (std::vector<std::size_t>{10, 10}));
  // Every task ran (so none is in a lease answer that Stop() would cut)...
  ASSERT_TRUE(WaitFor([&] { return w.worker().stats().succeeded == 25; }));
  w.StopAndJoin();  // ...and Stop() flushes the last 5 without lingering
  EXPECT_EQ(dray.acks().size(), 25u);
  sizes = dray.ack_batch_sizes();
  ASSERT_EQ(sizes.size(), 3u);
  EXPECT_EQ(sizes[2], 5u);
}

TEST(WorkerTest, AnAckIsSentAfterTheLingerWithoutWaitingForAFullBatch) {
  FakeDray dray;
  WorkerOptions o = Options(2);
  o.ack_batch = 256;
  o.ack_linger = milliseconds(2);
  RunningWorker w(dray, o, [](Worker& worker) {
    worker.Handle("ok", [](TaskContext&) { return std::string("1"); });
  });
  dray.Add("only", "ok");
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() == 1; }));
}

TEST(WorkerTest, NonRetryableErrorAndUnknownTypesFailForGood) {
  FakeDray dray;
  dray.Add("a", "fatal");
  dray.Add("b", "mystery");
  RunningWorker w(dray, Options(2), [](Worker& worker) {
    worker.Handle("fatal", [](TaskContext&) -> std::string {
      throw NonRetryableError("bad input: no width");
    });
  });
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() == 2; }));
  for (const auto& a : dray.acks()) {
    EXPECT_FALSE(a.success);
    EXPECT_FALSE(a.retry) << a.id;
    EXPECT_EQ(a.error, a.id == "a" ? "bad input: no width" : "no handler for type mystery");
  }
}

TEST(WorkerTest, HandleAllTakesTypesWithoutAHandler) {
  FakeDray dray;
  dray.Add("a", "anything", R"({"x":1})");
  RunningWorker w(dray, Options(1), [](Worker& worker) {
    worker.HandleAll([](TaskContext& ctx) { return ctx.payload(); });
  });
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() == 1; }));
  EXPECT_TRUE(dray.acks()[0].success);
  EXPECT_EQ(json::parse(dray.acks()[0].result), json::parse(R"({"x":1})"));
}

TEST(WorkerTest, ALostLeaseStopsTheHandlerAndDropsItsOutcome) {
  FakeDray dray;
  dray.SetHeartbeat(FakeDray::Heartbeat::kConflict);
  WorkerOptions o = Options(1);
  o.heartbeat_interval = milliseconds(10);
  std::atomic<bool> stopped{false};
  RunningWorker w(dray, o, [&](Worker& worker) {
    worker.Handle("slow", [&](TaskContext& ctx) {
      bool fired = WaitFor([&] { return ctx.stop_token().stop_requested(); });
      stopped = fired;
      return std::string(R"("late")");
    });
  });
  dray.Add("t1", "slow");
  ASSERT_TRUE(WaitFor([&] { return w.worker().stats().dropped == 1; }));
  EXPECT_TRUE(stopped);
  w.StopAndJoin();
  EXPECT_TRUE(dray.acks().empty());  // another attempt owns the task
  EXPECT_EQ(w.worker().stats().leased, 1u);
  EXPECT_GE(dray.server().requests_to("/v1/tasks/t1/heartbeat").size(), 1u);
}

TEST(WorkerTest, ACancelLearnedFromAHeartbeatIsReportedAsCancelled) {
  FakeDray dray;
  dray.SetHeartbeat(FakeDray::Heartbeat::kCancel);
  WorkerOptions o = Options(1);
  o.heartbeat_interval = milliseconds(10);
  std::atomic<bool> saw_cancel{false};
  RunningWorker w(dray, o, [&](Worker& worker) {
    worker.Handle("slow", [&](TaskContext& ctx) {
      WaitFor([&] { return ctx.stop_token().stop_requested(); });
      saw_cancel = ctx.cancel_requested();
      return std::string(R"("finished anyway")");
    });
  });
  dray.Add("t1", "slow");
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() == 1; }));
  EXPECT_TRUE(saw_cancel);
  EXPECT_FALSE(dray.acks()[0].success);
  EXPECT_EQ(dray.acks()[0].error, "cancelled");
}

TEST(WorkerTest, HeartbeatsCarryTheLeaseToken) {
  FakeDray dray;
  WorkerOptions o = Options(1);
  o.heartbeat_interval = milliseconds(5);
  RunningWorker w(dray, o, [&](Worker& worker) {
    worker.Handle("slow", [&](TaskContext&) {
      WaitFor([&] { return dray.server().requests_to("/v1/tasks/t1/heartbeat").size() >= 2; });
      return std::string("null");
    });
  });
  dray.Add("t1", "slow");
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() == 1; }));
  auto hbs = dray.server().requests_to("/v1/tasks/t1/heartbeat");
  ASSERT_GE(hbs.size(), 2u);
  EXPECT_EQ(hbs[0].json().at("lease"), "tok-t1");
  EXPECT_TRUE(dray.acks()[0].success);
}

TEST(WorkerTest, StopLetsRunningHandlersFinishAndReportsThem) {
  FakeDray dray;
  std::atomic<bool> started{false}, release{false};
  RunningWorker w(dray, Options(1), [&](Worker& worker) {
    worker.Handle("slow", [&](TaskContext&) {
      started = true;
      WaitFor([&] { return release.load(); });
      return std::string("\"done\"");
    });
  });
  dray.Add("t1", "slow");
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  // Stop() only asks: it has returned, and the handler is still running.
  w.worker().Stop();
  release = true;
  w.StopAndJoin();
  ASSERT_EQ(dray.acks().size(), 1u);
  EXPECT_TRUE(dray.acks()[0].success);
}

TEST(WorkerTest, StopCancelRunningFiresStopTokens) {
  FakeDray dray;
  std::atomic<bool> started{false};
  std::atomic<bool> saw_stop{false};
  RunningWorker w(dray, Options(1), [&](Worker& worker) {
    worker.Handle("slow", [&](TaskContext& ctx) -> std::string {
      started = true;
      saw_stop = WaitFor([&] { return ctx.stop_token().stop_requested(); }, std::chrono::seconds(120));
      throw std::runtime_error("stopped");
    });
  });
  dray.Add("t1", "slow");
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  w.StopAndJoin(StopMode::kCancelRunning);
  EXPECT_TRUE(saw_stop) << "the handler's stop token never fired";
  ASSERT_EQ(dray.acks().size(), 1u);
  EXPECT_FALSE(dray.acks()[0].success);
  EXPECT_TRUE(dray.acks()[0].retry);
}

TEST(WorkerTest, AcksRetryWhileTheServerIsAwayAndAreGivenUpAfterStop) {
  FakeDray dray;
  dray.SetAckStatus(503);
  WorkerOptions o = Options(1);
  o.stop_ack_timeout = milliseconds(200);
  RunningWorker w(dray, o, [](Worker& worker) {
    worker.Handle("ok", [](TaskContext&) { return std::string("1"); });
  });
  dray.Add("t1", "ok");
  // Refused more than once: the worker keeps trying.
  ASSERT_TRUE(WaitFor([&] { return dray.server().requests_to("/v1/acks").size() >= 2; }));
  w.StopAndJoin();  // returns although the server never takes the ack
  EXPECT_EQ(w.worker().stats().acks_unsent, 1u);
}

TEST(WorkerTest, AcksDeliveredOnceTheServerComesBack) {
  FakeDray dray;
  dray.SetAckStatus(503);
  RunningWorker w(dray, Options(1), [](Worker& worker) {
    worker.Handle("ok", [](TaskContext&) { return std::string("1"); });
  });
  dray.Add("t1", "ok");
  ASSERT_TRUE(WaitFor([&] { return dray.server().requests_to("/v1/acks").size() >= 2; }));
  dray.SetAckStatus(200);
  ASSERT_TRUE(WaitFor([&] { return dray.acks().size() == 1; }));
  w.StopAndJoin();
  EXPECT_EQ(w.worker().stats().acks_unsent, 0u);
}

TEST(WorkerTest, StopBeforeRunReturnsAtOnce) {
  FakeDray dray;
  ClientOptions c;
  c.server = dray.url();
  Worker worker(c, Options(2));
  worker.Stop();
  EXPECT_OK(worker.Run());
  EXPECT_TRUE(dray.server().requests().empty());
}

TEST(WorkerTest, StopCutsAnIdleLongPoll) {
  FakeDray dray;
  dray.SetPollCap(std::chrono::hours(1));  // the poll ends only if the worker cuts it
  WorkerOptions o = Options(1);
  o.poll_wait = std::chrono::hours(1);
  RunningWorker w(dray, o, [](Worker& worker) {
    worker.Handle("ok", [](TaskContext&) { return std::string("1"); });
  });
  ASSERT_TRUE(WaitFor([&] { return !dray.max_asked().empty(); }));
  auto stopped = std::async(std::launch::async, [&] { w.StopAndJoin(); });
  EXPECT_TRUE(WaitFor([&] {
    return stopped.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }, std::chrono::seconds(120))) << "Stop left the worker in its hour-long poll";
}

}  // namespace
}  // namespace dray
