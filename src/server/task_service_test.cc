// TaskService against a real SQLite store in a temp dir, with a fake clock
// and the io_context run by hand, so that the test decides exactly what is
// due when a call is made.
#include "server/task_service.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "store/sqlite/sqlite_store.h"
#include "support/status_assert.h"

namespace dray {
namespace {

using std::chrono::milliseconds;

class Harness {
 public:
  explicit Harness(ServerConfig config) : config_(std::move(config)) {
    std::string tmpl = ::testing::TempDir() + "/dray-service-XXXXXX";
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  ~Harness() {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Opens the store and a service on it, as a server start does.
  void Open() {
    auto store = OpenSqliteStore(SqliteOptions{dir_ + "/dray.db"});
    ASSERT_OK(store);
    store_ = std::move(*store);
    service_ = std::make_unique<TaskService>(ioc_, store_.get(), &clock_, config_);
    Status s = service_->Recover();
    ASSERT_OK(s);
    service_->Start();
  }
  // Stops the service (its pipeline commits what it was handed) and closes
  // the store: what is on disk now is all a restart sees.
  void Close() {
    if (!service_) return;
    service_->Stop();
    service_.reset();
    store_.reset();
  }

  // Makes a call and runs the io_context until its answer comes.
  template <typename T>
  StatusOr<T> Await(const std::function<void(Callback<T>)>& call) {
    std::optional<StatusOr<T>> got;
    call([&got](StatusOr<T> r) { got.emplace(std::move(r)); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!got && std::chrono::steady_clock::now() < deadline) {
      ioc_.restart();
      ioc_.run_one_for(milliseconds(10));
    }
    if (!got) return DeadlineExceeded("no answer in 60 s");
    return std::move(*got);
  }
  // Makes a call that must fail at once, without the io_context running:
  // nothing else (the ticker, say) gets to act between the call and now.
  template <typename T>
  Status FailsAtOnce(const std::function<void(Callback<T>)>& call) {
    std::optional<StatusOr<T>> got;
    call([&got](StatusOr<T> r) { got.emplace(std::move(r)); });
    if (!got) return Internal("the call did not answer at once");
    if (got->ok()) return Internal("the call succeeded");
    return got->status();
  }

  TaskService& service() { return *service_; }
  FakeClock& clock() { return clock_; }

 private:
  ServerConfig config_;
  std::string dir_;
  FakeClock clock_;
  boost::asio::io_context ioc_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<TaskService> service_;
};

TaskSpec Spec(const std::string& type, const std::string& queue) {
  TaskSpec t;
  t.type = type;
  t.queue = queue;
  return t;
}

// Issue 16: the schedule, trigger and event calls tick the engine before
// they validate. When they then failed, what the tick did (a lease expired,
// a schedule fired its task) was changed in memory and shown to clients but
// never committed: a restart lost it. Each of the five calls is made here
// when a schedule tick and (the first time) a lease expiry are due, fails,
// and what a client could see afterwards must survive a restart.
TEST(TaskServiceTest, ACallThatFailsStillCommitsWhatItsTickChanged) {
  ServerConfig config;
  // Room for the leased task and five ticks' tasks, none for the event's:
  // the last call fails for want of room.
  config.max_live_tasks = 6;
  Harness h(config);
  h.Open();
  TaskService& svc = h.service();

  ScheduleSpec beat;
  beat.id = "beat";
  beat.interval_ms = 1000;
  beat.task = Spec("beat", "beats");
  ASSERT_OK(h.Await<Schedule>([&](Callback<Schedule> cb) { svc.CreateSchedule(beat, cb); }));
  TriggerSpec paid;
  paid.id = "on-paid";
  paid.event = "paid";
  paid.task = Spec("ship", "orders");
  ASSERT_OK(h.Await<Trigger>([&](Callback<Trigger> cb) { svc.CreateTrigger(paid, cb); }));
  TaskSpec work = Spec("work", "jobs");
  work.lease_ms = 1000;
  auto submitted = h.Await<std::vector<SubmitOutcome>>(
      [&](Callback<std::vector<SubmitOutcome>> cb) { svc.Submit({work}, cb); });
  ASSERT_OK(submitted);
  const std::string work_id = submitted->at(0).id;
  LeaseRequest req;
  req.worker = "w1";
  req.queues = {"jobs"};
  auto leased = h.Await<std::vector<LeasedTask>>(
      [&](Callback<std::vector<LeasedTask>> cb) { svc.Lease(req, 0, cb); });
  ASSERT_OK(leased);
  ASSERT_EQ(leased->size(), 1u);

  const std::vector<std::pair<const char*, std::function<Status()>>> failing = {
      {"CreateSchedule with a taken id",
       [&] { return h.FailsAtOnce<Schedule>([&](Callback<Schedule> cb) { svc.CreateSchedule(beat, cb); }); }},
      {"PatchSchedule to a zone that does not exist",
       [&] {
         return h.FailsAtOnce<Schedule>([&](Callback<Schedule> cb) {
           svc.PatchSchedule(
               "default", "beat",
               [](const ScheduleSpec& current) -> StatusOr<ScheduleSpec> {
                 ScheduleSpec next = current;
                 next.interval_ms = 0;
                 next.cron = "* * * * *";
                 next.timezone = "Mars/Olympus";
                 return next;
               },
               cb);
         });
       }},
      {"CreateTrigger with a taken id",
       [&] { return h.FailsAtOnce<Trigger>([&](Callback<Trigger> cb) { svc.CreateTrigger(paid, cb); }); }},
      {"SetTriggerPaused on no trigger",
       [&] {
         return h.FailsAtOnce<Trigger>(
             [&](Callback<Trigger> cb) { svc.SetTriggerPaused("default", "nobody", true, cb); });
       }},
      {"EmitEvent past the live-task bound",
       [&] {
         EventSpec e;
         e.name = "paid";
         return h.FailsAtOnce<TaskService::EventAnswer>(
             [&](Callback<TaskService::EventAnswer> cb) { svc.EmitEvent(e, cb); });
       }},
  };
  std::vector<std::string> seen_ticks;  // the task each call's tick fired
  std::optional<Task> seen_work;        // the leased task after its lease expired
  std::int64_t fired = 0;
  for (const auto& [what, call] : failing) {
    h.clock().Advance(1000);  // one tick due (and, the first time, the lease's end)
    Status s = call();
    EXPECT_FALSE(s.ok()) << what;
    EXPECT_NE(s.code(), StatusCode::kInternal) << what << ": " << s.ToString();
    auto sched = svc.GetSchedule("default", "beat", 0);
    ASSERT_OK(sched);
    EXPECT_EQ(sched->fired, ++fired) << what << ": its tick fired the schedule";
    seen_ticks.push_back(sched->last_task);
    auto tick = h.Await<Task>([&](Callback<Task> cb) { svc.Get("default", sched->last_task, 0, cb); });
    EXPECT_OK(tick) << what << ": a client sees the tick's task";
    if (!seen_work) {
      auto t = h.Await<Task>([&](Callback<Task> cb) { svc.Get("default", work_id, 0, cb); });
      ASSERT_OK(t);
      ASSERT_EQ(t->history.size(), 1u);
      EXPECT_EQ(t->history[0].outcome, AttemptOutcome::kExpired) << what;
      seen_work = *t;
    }
  }

  // Everything handed to the pipeline before this call is committed before
  // it answers; then the server goes away and comes back on what is on disk.
  ASSERT_OK(h.Await<QueueInfo>([&](Callback<QueueInfo> cb) {
    svc.PatchQueue("default", "jobs", [](QueueSettings*) { return Status::Ok(); }, cb);
  }));
  h.Close();
  h.Open();
  TaskService& again = h.service();
  auto sched = again.GetSchedule("default", "beat", 0);
  ASSERT_OK(sched);
  EXPECT_EQ(sched->fired, fired);
  for (const std::string& id : seen_ticks) {
    auto t = h.Await<Task>([&](Callback<Task> cb) { again.Get("default", id, 0, cb); });
    EXPECT_OK(t) << "tick task " << id;
  }
  auto t = h.Await<Task>([&](Callback<Task> cb) { again.Get("default", work_id, 0, cb); });
  ASSERT_OK(t);
  ASSERT_FALSE(t->history.empty());
  EXPECT_EQ(t->history[0].outcome, AttemptOutcome::kExpired);
  EXPECT_EQ(t->history[0].ended_at, seen_work->history[0].ended_at)
      << "the expiry a client saw, not one made again at the restart";
}

}  // namespace
}  // namespace dray
