#include "server/task_service.h"

#include <algorithm>
#include <set>
#include <boost/asio/post.hpp>

#include "core/ids.h"
#include "core/state_machine.h"

namespace dray {
namespace {

using Delivery = std::pair<Callback<std::vector<LeasedTask>>, std::vector<LeasedTask>>;

template <typename T>
void Respond(const Callback<T>& done, const Status& s, T value) {
  if (s.ok()) {
    done(std::move(value));
  } else {
    done(s);
  }
}

}  // namespace

TaskService::TaskService(boost::asio::io_context& ioc, Store* store, Clock* clock,
                         const ServerConfig& config, DiskGuard* disk)
    : ioc_(ioc),
      store_(store),
      clock_(clock),
      disk_(disk),
      config_(config),
      pipeline_(store, CommitOptions{config.commit_max_batch, config.commit_max_wait,
                                     disk ? std::function<void()>([disk] { disk->Check(); })
                                          : std::function<void()>()}),
      engine_(EngineOptions{config.idempotency_window_ms, config.max_live_tasks, 0,
                            config.worker_grace_ms}),
      lease_waiters_(ioc),
      task_waiters_(ioc),
      workflow_waiters_(ioc),
      ticker_(ioc),
      purge_timer_(ioc),
      feed_(std::make_shared<ChangeFeed>(ChangeFeedOptions{}, clock)),
      heartbeat_timer_(ioc) {}

TaskService::~TaskService() { Stop(); }

Status TaskService::Recover() {
  MutexLock lock(&mu_);
  auto marks = store_->LoadMarks();
  if (!marks.ok()) return marks.status();
  engine_.RestoreMarks(*marks);
  auto queues = store_->LoadQueues();
  if (!queues.ok()) return queues.status();
  for (const QueueRecord& q : *queues) engine_.RestoreQueue(q);
  auto finished = store_->CountTerminal();  // the one count over the store
  if (!finished.ok()) return finished.status();
  engine_.RestoreFinishedCounts(*finished);
  // Workflows before their tasks: a task links to its live workflow.
  auto workflows = store_->LoadRunningWorkflows();
  if (!workflows.ok()) return workflows.status();
  for (const auto& w : *workflows) engine_.RestoreWorkflow(w.workflow, w.failed_tasks);
  // The callbacks run now, on this thread, under mu_.
  Engine* engine = &engine_;
  Status restored;
  DRAY_RETURN_IF_ERROR(store_->ScanLiveTasks([engine, &restored](Task&& t) {
    if (restored.ok()) restored = engine->RestoreTask(std::move(t));
  }));
  DRAY_RETURN_IF_ERROR(restored);
  // Schedules after the tasks: overlap looks at each one's last run.
  auto schedules = store_->LoadSchedules();
  if (!schedules.ok()) return schedules.status();
  for (Schedule& s : *schedules) engine_.RestoreSchedule(std::move(s), clock_->NowMs());
  auto triggers = store_->LoadTriggers();
  if (!triggers.ok()) return triggers.status();
  for (Trigger& t : *triggers) engine_.RestoreTrigger(std::move(t));
  {
    EngineOutput out;
    engine_.FinishRecovery(
        [this](const std::string& ns, const std::string& id) { return store_->GetTask(ns, id); },
        clock_->NowMs(), &out);
    // Repairs only (a consistent store needs none), before anything else runs.
    if (!out.mutations.empty()) DRAY_RETURN_IF_ERROR(store_->Commit(out.mutations));
  }
  const TimeMs since = clock_->NowMs() - config_.idempotency_window_ms;
  DRAY_RETURN_IF_ERROR(store_->ScanEventIds(
      since, [engine](const std::string& ns, const std::string& id, TimeMs created_at) {
        engine->RestoreEventId(ns, id, created_at);
      }));
  return store_->ScanKeys(since, [engine](const std::string& ns, const std::string& key,
                                         const std::string& id, TimeMs created_at) {
    engine->RestoreKey(ns, key, id, created_at);
  });
}

void TaskService::Start() {
  MutexLock lock(&mu_);
  // Leases that ran out while the server was down expire on the first tick.
  PendingOutput out;
  engine_.Tick(clock_->NowMs(), out.get());
  CommitLocked(out, nullptr);
  ArmTickerLocked(clock_->NowMs());
  purge_timer_.expires_after(std::chrono::milliseconds(config_.purge_interval_ms));
  purge_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Purge();
  });
  ArmHeartbeat();
}

void TaskService::ArmHeartbeat() {
  heartbeat_timer_.expires_after(std::chrono::seconds(15));
  heartbeat_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    feed_->Heartbeat();
    MutexLock lock(&mu_);
    if (!stopped_) ArmHeartbeat();
  });
}

void TaskService::Stop() {
  std::vector<WaitList<LeaseWaiter>::Taken> leases;
  std::vector<std::pair<Callback<Task>, StatusOr<Task>>> tasks;
  std::vector<WaitList<WorkflowWaiter>::Taken> workflows;
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    ticker_.cancel();
    purge_timer_.cancel();
    heartbeat_timer_.cancel();
    leases = lease_waiters_.TakeAll();
    for (const auto& w : leases) engine_.RemoveWaiter(w.id);
    for (auto& w : task_waiters_.TakeAll()) {
      std::optional<Task> t = engine_.Find(w.entry.ns, w.key);
      tasks.emplace_back(std::move(w.entry.done),
                         t ? StatusOr<Task>(std::move(*t))
                           : StatusOr<Task>(Unavailable("server is stopping")));
    }
    workflows = workflow_waiters_.TakeAll();
  }
  for (auto& w : workflows) {
    ReadWorkflow(w.entry.ns, w.key, w.entry.with_tasks, std::move(w.entry.done));
  }
  for (auto& w : leases) w.entry(std::vector<LeasedTask>{});
  for (auto& [done, value] : tasks) done(std::move(value));
  pipeline_.Stop();
}

Status TaskService::AcceptingLocked() const {
  if (stopped_) return Unavailable("the server is shutting down");
  Status h = store_->health();
  if (!h.ok()) return Unavailable("the store refuses writes: " + h.message());
  return Status::Ok();
}

Status TaskService::Ready() const {
  if (disk_ && disk_->full()) {
    disk_->CheckIfStale(std::chrono::milliseconds(100));
    if (disk_->full()) return OutOfSpace("the disk holding the data is nearly full: submits are refused");
  }
  MutexLock lock(&mu_);
  return AcceptingLocked();
}

Status TaskService::Admission() {
  if (disk_ && disk_->full()) {
    disk_->CheckIfStale(std::chrono::milliseconds(100));  // space may be back
    if (disk_->full()) {
      return OutOfSpace("the disk holding the data is nearly full (" +
                        std::to_string(disk_->free_bytes() >> 20) +
                        " MiB free): new tasks are refused until space is freed; running tasks "
                        "can still report");
    }
  }
  const std::size_t backlog = pipeline_.queued_mutations();
  if (backlog < config_.max_commit_backlog) return Status::Ok();
  refused_overload_.fetch_add(1, std::memory_order_relaxed);
  return ResourceExhausted("overloaded: " + std::to_string(backlog) +
                           " writes are waiting to be committed; retry later");
}

ServiceStats TaskService::stats() const {
  ServiceStats s;
  {
    MutexLock lock(&mu_);
    s.live_tasks = engine_.live_tasks();
    s.live_workflows = engine_.live_workflows();
    s.schedules = engine_.schedules();
    s.triggers = engine_.triggers();
    s.stream_subscribers = feed_->subscribers();
    s.workers = engine_.workers();
    s.ticks_fired = engine_.ticks_fired();
    s.ticks_skipped = engine_.ticks_skipped();
    s.lease_waiters = lease_waiters_.size();
    s.task_waiters = task_waiters_.size();
  }
  s.commits = pipeline_.stats();
  s.commit_backlog = pipeline_.queued_mutations();
  s.refused_overload = refused_overload_.load(std::memory_order_relaxed);
  s.store_round_trips = store_->round_trips();
  if (disk_) {
    s.disk_full = disk_->full();
    s.disk_free_bytes = disk_->free_bytes();
  }
  return s;
}

// ---------------------------------------------------------------- commit

void TaskService::CommitLocked(PendingOutput& pending, std::function<void(const Status&)> done) {
  EngineOutput out = pending.Take();
  const TimeMs now = clock_->NowMs();
  std::vector<Delivery> deliveries;
  if (out.made_ready && !lease_waiters_.empty()) {
    for (auto& [wid, leased] : engine_.ServeWaiters(now, &out)) {
      if (auto waiter = lease_waiters_.TakeById(wid)) {
        deliveries.emplace_back(std::move(*waiter), std::move(leased));
      }
    }
  }
  ArmTickerLocked(now);
  if (out.mutations.empty() && deliveries.empty() && !done) return;

  // Task changes for the stream, published once committed (in commit order:
  // the pipeline runs its callbacks in order, on its one thread).
  std::vector<std::shared_ptr<const Task>> changed;
  if (feed_->recording(now)) {
    for (const Mutation& m : out.mutations) {
      if (const auto& t = TaskOf(m)) changed.push_back(t);
    }
  } else if (!out.mutations.empty()) {
    feed_->Missed();
  }
  std::vector<std::shared_ptr<const Task>> finished;
  std::vector<std::shared_ptr<const Workflow>> finished_workflows;
  if (!out.finished.empty()) {
    for (const Mutation& m : out.mutations) {
      if (const auto& t = TaskOf(m); t && IsTerminal(t->state)) finished.push_back(t);
      const auto* w = std::get_if<mutation::PutWorkflow>(&m);
      if (w && w->workflow->state != WorkflowState::kRunning && !workflow_waiters_.empty()) {
        finished_workflows.push_back(w->workflow);
      }
    }
  }
  // The answers are built (JSON of every task leased, say) on an io thread,
  // not on the pipeline's: that one thread bounds how fast commits go.
  pipeline_.Submit(std::move(out.mutations),
                   [this, done = std::move(done), deliveries = std::move(deliveries),
                    finished = std::move(finished),
                    finished_workflows = std::move(finished_workflows),
                    changed = std::move(changed)](const Status& s) mutable {
                     if (s.ok() && !changed.empty()) feed_->Publish(changed);
                     boost::asio::post(ioc_, [this, s, done = std::move(done),
                                              deliveries = std::move(deliveries),
                                              finished = std::move(finished),
                                              finished_workflows = std::move(finished_workflows)] {
                       if (done) done(s);
                       for (const Delivery& d : deliveries) Respond(d.first, s, d.second);
                       if (!finished.empty()) OnCommitted(s, finished);
                       if (!finished_workflows.empty()) OnWorkflowsCommitted(finished_workflows);
                     });
                   });
}

void TaskService::OnCommitted(const Status& s,
                              const std::vector<std::shared_ptr<const Task>>& finished) {
  std::vector<std::pair<Callback<Task>, std::shared_ptr<const Task>>> wake;
  {
    MutexLock lock(&mu_);
    if (task_waiters_.empty()) return;
    for (const auto& t : finished) {
      for (TaskWaiter& w : task_waiters_.TakeByKey(t->id)) wake.emplace_back(std::move(w.done), t);
    }
  }
  for (auto& [done, t] : wake) Respond(done, s, *t);
}

// ---------------------------------------------------------------- timers

void TaskService::ArmTickerLocked(TimeMs now) {
  if (stopped_) return;
  TimeMs target = now + 1000;  // at least once a second: idempotency window upkeep
  if (auto next = engine_.NextWakeup()) target = std::min(target, *next);
  if (ticker_at_ != 0 && ticker_at_ <= target) return;
  ticker_at_ = target;
  ticker_.expires_after(std::chrono::milliseconds(std::max<TimeMs>(target - now, 0)));
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (!ec) OnTick();
  });
}

void TaskService::OnTick() {
  MutexLock lock(&mu_);
  ticker_at_ = 0;
  if (stopped_) return;
  PendingOutput out;
  engine_.Tick(clock_->NowMs(), out.get());
  CommitLocked(out, nullptr);
}

void TaskService::Purge() {
  const TimeMs now = clock_->NowMs();
  PurgeWorkflows(now - config_.retention_ms);
  if (auto old = store_->HasEventsBefore(now - config_.retention_ms); old.ok() && *old) {
    pipeline_.Submit({mutation::DeleteEventsBefore{now - config_.retention_ms}},
                     [](const Status&) {});
  }
  auto expired = store_->FindExpired(now - config_.retention_ms, 1000);
  MutexLock lock(&mu_);
  if (stopped_) return;
  bool more = false;
  if (expired.ok() && !expired->empty()) {
    more = expired->size() == 1000;
    std::vector<Mutation> deletes;
    for (const ExpiredTask& e : *expired) {
      // A task retried since the query is live again: keep it.
      if (engine_.IsLive(e.ns, e.id)) continue;
      engine_.ForgetFinished(e.ns, e.queue, e.state);
      deletes.push_back(mutation::DeleteTask{e.ns, e.id});
    }
    pipeline_.Submit(std::move(deletes), [](const Status&) {});
  }
  purge_timer_.expires_after(std::chrono::milliseconds(more ? 10 : config_.purge_interval_ms));
  purge_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Purge();
  });
}

// A finished workflow goes with all its tasks, in one commit.
void TaskService::PurgeWorkflows(TimeMs cutoff) {
  auto expired = store_->FindExpiredWorkflows(cutoff, 100);
  if (!expired.ok()) return;
  for (const auto& [ns, id] : *expired) {
    auto tasks = store_->WorkflowTasks(ns, id);
    if (!tasks.ok()) return;
    MutexLock lock(&mu_);
    if (stopped_) return;
    std::vector<Mutation> deletes;
    for (const Task& t : *tasks) {
      if (engine_.IsLive(ns, t.id)) continue;  // cannot be: a finished workflow has none
      engine_.ForgetFinished(ns, t.queue, t.state);
      deletes.push_back(mutation::DeleteTask{ns, t.id});
    }
    deletes.push_back(mutation::DeleteWorkflow{ns, id});
    pipeline_.Submit(std::move(deletes), [](const Status&) {});
  }
}

// ---------------------------------------------------------------- workflows

void TaskService::SubmitWorkflow(WorkflowSpec spec, Callback<WorkflowOutcome> done) {
  // Dependencies that are not names of this workflow may be existing tasks.
  std::set<std::string> names, external;
  for (const WorkflowNodeSpec& n : spec.tasks) names.insert(n.name);
  for (const WorkflowNodeSpec& n : spec.tasks) {
    for (const std::string& d : n.depends_on) {
      if (!names.count(d) && IsValidId(d)) external.insert(d);
    }
  }
  if (external.empty()) {
    MutexLock lock(&mu_);
    return SubmitWorkflowLocked(std::move(spec), {}, std::move(done));
  }
  auto shared = std::make_shared<WorkflowSpec>(std::move(spec));
  pipeline_.Submit({}, [this, shared, external = std::move(external),
                        done = std::move(done)](const Status&) mutable {
    boost::asio::post(ioc_, [this, shared, external = std::move(external),
                             done = std::move(done)]() mutable {
      std::map<std::string, Task> finished;
      for (const std::string& id : external) {
        auto t = store_->GetTask(shared->ns, id);
        if (t.ok()) {
          finished.emplace(id, std::move(*t));
        } else if (t.status().code() != StatusCode::kNotFound) {
          return done(t.status());
        }
      }
      MutexLock lock(&mu_);
      SubmitWorkflowLocked(std::move(*shared), finished, std::move(done));
    });
  });
}

void TaskService::SubmitWorkflowLocked(WorkflowSpec spec, const std::map<std::string, Task>& finished,
                                       Callback<WorkflowOutcome> done) {
  Status s = MutateLocked<WorkflowOutcome>(
      Admit::kSubmit,
      [&](Engine& e, TimeMs now, EngineOutput* out) {
        return e.SubmitWorkflow(std::move(spec), finished, now, out);
      },
      [done](const Status& c, WorkflowOutcome outcome) { Respond(done, c, std::move(outcome)); });
  if (!s.ok()) done(s);
}

void TaskService::OnWorkflowsCommitted(
    const std::vector<std::shared_ptr<const Workflow>>& finished) {
  std::vector<std::pair<std::string, WorkflowWaiter>> wake;
  {
    MutexLock lock(&mu_);
    for (const auto& w : finished) {
      for (WorkflowWaiter& waiter : workflow_waiters_.TakeByKey(w->id)) {
        wake.emplace_back(w->id, std::move(waiter));
      }
    }
  }
  // Read from the store, which now holds the finished state.
  for (auto& [id, w] : wake) ReadWorkflow(w.ns, id, w.with_tasks, std::move(w.done));
}

void TaskService::GetWorkflow(const std::string& ns, const std::string& id, bool with_tasks,
                              std::int64_t wait_ms, Callback<WorkflowView> done) {
  if (wait_ms > 0) {
    MutexLock lock(&mu_);
    if (engine_.FindWorkflow(ns, id) && !stopped_) {
      workflow_waiters_.Add(id, WorkflowWaiter{ns, with_tasks, std::move(done)},
                            std::chrono::milliseconds(std::min(wait_ms, config_.max_wait_ms)),
                            [this, id](std::uint64_t wid) {
                              std::optional<WorkflowWaiter> w;
                              {
                                MutexLock lock2(&mu_);
                                w = workflow_waiters_.TakeById(wid);
                              }
                              if (w) ReadWorkflow(w->ns, id, w->with_tasks, std::move(w->done));
                            });
      return;
    }
  }
  ReadWorkflow(ns, id, with_tasks, std::move(done));
}

void TaskService::ReadWorkflow(const std::string& ns, const std::string& id, bool with_tasks,
                               Callback<WorkflowView> done) {
  WorkflowView view;
  auto w = store_->GetWorkflow(ns, id);
  if (!w.ok()) return done(w.status());
  view.workflow = std::move(*w);
  if (with_tasks) {
    auto tasks = store_->WorkflowTasks(ns, id);
    if (!tasks.ok()) return done(tasks.status());
    view.tasks = std::move(*tasks);
  }
  {
    // Live tasks as the engine sees them now (with why they wait).
    MutexLock lock(&mu_);
    if (auto live = engine_.FindWorkflow(ns, id)) view.workflow = live->workflow;
    for (Task& t : view.tasks) {
      if (std::optional<Task> l = engine_.Find(ns, t.id)) t = std::move(*l);
    }
  }
  done(std::move(view));
}

StatusOr<WorkflowPage> TaskService::ListWorkflows(const WorkflowQuery& query) {
  return store_->ListWorkflows(query);
}

void TaskService::CancelWorkflow(const std::string& ns, const std::string& id,
                                 Callback<Workflow> done) {
  Status s;
  {
    MutexLock lock(&mu_);
    s = MutateLocked<Workflow>(
        Admit::kWrite,
        [&](Engine& e, TimeMs now, EngineOutput* out) { return e.CancelWorkflow(ns, id, now, out); },
        [done](const Status& c, Workflow w) { Respond(done, c, std::move(w)); });
  }
  if (s.code() != StatusCode::kNotFound) {
    if (!s.ok()) done(s);
    return;
  }
  // Not live: finished, or unknown. The barrier makes the row current.
  pipeline_.Submit({}, [this, ns, id, done = std::move(done)](const Status&) {
    boost::asio::post(ioc_, [this, ns, id, done] {
      auto w = store_->GetWorkflow(ns, id);
      if (!w.ok()) return done(w.status());
      if (w->state == WorkflowState::kCancelled) return done(std::move(*w));
      done(FailedPrecondition("workflow " + id + " is " +
                              std::string(WorkflowStateName(w->state)) +
                              "; only a running workflow can be cancelled"));
    });
  });
}

// ---------------------------------------------------------------- producers

void TaskService::Submit(std::vector<TaskSpec> specs, Callback<std::vector<SubmitOutcome>> done) {
  // Even a submit that only matched idempotency keys waits for the commit
  // (an empty entry is a barrier): the first task may not be durable yet.
  Mutate<std::vector<SubmitOutcome>>(
      Admit::kSubmit,
      [&](Engine& e, TimeMs now, EngineOutput* out) { return e.Submit(std::move(specs), now, out); },
      std::move(done));
}

void TaskService::Get(const std::string& ns, const std::string& id, std::int64_t wait_ms,
                      Callback<Task> done) {
  {
    MutexLock lock(&mu_);
    if (std::optional<Task> t = engine_.Find(ns, id)) {
      if (wait_ms <= 0 || stopped_) return done(std::move(*t));
      task_waiters_.Add(id, TaskWaiter{ns, std::move(done)},
                        std::chrono::milliseconds(std::min(wait_ms, config_.max_wait_ms)),
                        [this, ns, id](std::uint64_t wid) {
                          std::optional<TaskWaiter> w;
                          std::optional<Task> live;
                          {
                            MutexLock lock2(&mu_);
                            w = task_waiters_.TakeById(wid);
                            if (!w) return;
                            live = engine_.Find(ns, id);
                          }
                          if (live) return w->done(std::move(*live));
                          ReadStored(ns, id, std::move(w->done));
                        });
      return;
    }
  }
  ReadStored(ns, id, std::move(done));
}

void TaskService::ReadStored(const std::string& ns, const std::string& id, Callback<Task> done) {
  auto r = store_->GetTask(ns, id);
  if (!r.ok() || IsTerminal(r->state)) return done(std::move(r));
  // Committed as live but no longer live in the engine: its terminal write
  // is in flight. Wait for it, then read again.
  pipeline_.Submit({}, [this, ns, id, done = std::move(done)](const Status&) {
    boost::asio::post(ioc_, [this, ns, id, done] {
      {
        MutexLock lock(&mu_);
        if (std::optional<Task> t = engine_.Find(ns, id)) return done(std::move(*t));
      }
      done(store_->GetTask(ns, id));
    });
  });
}

StatusOr<TaskPage> TaskService::List(const TaskQuery& query) { return store_->ListTasks(query); }

void TaskService::Cancel(const std::string& ns, const std::string& id, Callback<Task> done) {
  Status s;
  {
    MutexLock lock(&mu_);
    s = MutateLocked<Task>(
        Admit::kWrite, [&](Engine& e, TimeMs now, EngineOutput* out) { return e.Cancel(ns, id, now, out); },
        [done](const Status& c, Task t) { Respond(done, c, std::move(t)); });
  }
  if (s.code() == StatusCode::kNotFound) return ActOnStored(ns, id, /*retry=*/false, std::move(done));
  if (!s.ok()) done(s);
}

void TaskService::Retry(const std::string& ns, const std::string& id, Callback<Task> done) {
  {
    MutexLock lock(&mu_);
    if (Status s = AcceptingLocked(); !s.ok()) return done(s);
    if (std::optional<Task> t = engine_.Find(ns, id)) {
      return done(FailedPrecondition("task " + id + " is " + std::string(TaskStateName(t->state)) +
                                     "; only failed or cancelled tasks can be retried"));
    }
  }
  ActOnStored(ns, id, /*retry=*/true, std::move(done));
}

void TaskService::ActOnStored(const std::string& ns, const std::string& id, bool retry,
                              Callback<Task> done) {
  // The barrier makes the store's row the task's latest state.
  pipeline_.Submit({}, [this, ns, id, retry, done = std::move(done)](const Status&) {
    boost::asio::post(ioc_, [this, ns, id, retry, done] {
      auto stored = store_->GetTask(ns, id);
      if (!stored.ok()) return done(stored.status());
      if (!retry) {
        // Not live means terminal: cancelling a cancelled task is a no-op,
        // anything else is refused by the state machine.
        auto d = Decide(*stored, EventInput{TaskEvent::kCancel}, clock_->NowMs());
        if (!d.ok()) return done(d.status());
        return done(std::move(*stored));
      }
      Mutate<Task>(
          Admit::kWrite,
          [&](Engine& e, TimeMs now, EngineOutput* out) -> StatusOr<Task> {
            if (e.IsLive(ns, id)) {
              return FailedPrecondition("task " + id + " changed meanwhile; try again");
            }
            return e.Retry(std::move(*stored), now, out);
          },
          done);
    });
  });
}

// ---------------------------------------------------------------- workers

void TaskService::Lease(LeaseRequest req, std::int64_t wait_ms,
                        Callback<std::vector<LeasedTask>> done, const AbandonHook& on_abandon) {
  std::uint64_t wid;
  {
    MutexLock lock(&mu_);
    if (Status s = AcceptingLocked(); !s.ok()) return done(s);
    // Not Mutate: an empty answer may become a waiter, which must be in
    // place before CommitLocked serves waiters.
    PendingOutput out;
    auto r = engine_.Lease(req, clock_->NowMs(), out.get());
    if (!r.ok()) {
      CommitLocked(out, nullptr);
      return done(r.status());
    }
    if (!r->empty() || wait_ms <= 0) {
      return CommitLocked(out, [done, leased = std::move(*r)](const Status& s) {
        Respond(done, s, leased);
      });
    }
    wid = lease_waiters_.Add({}, std::move(done),
                             std::chrono::milliseconds(std::min(wait_ms, config_.max_wait_ms)),
                             [this](std::uint64_t id) { AbandonWait(id); });
    engine_.AddWaiter(wid, std::move(req));
    CommitLocked(out, nullptr);
  }
  // Outside mu_: the hook may run the function at once.
  if (on_abandon) on_abandon([this, wid] { AbandonWait(wid); });
}

void TaskService::AbandonWait(std::uint64_t waiter_id) {
  Callback<std::vector<LeasedTask>> cb;
  {
    MutexLock lock(&mu_);
    auto waiter = lease_waiters_.TakeById(waiter_id);
    if (!waiter) return;  // served, timed out or stopped already
    engine_.RemoveWaiter(waiter_id);
    cb = std::move(*waiter);
  }
  cb(std::vector<LeasedTask>{});
}

namespace {

// A worker call on a task that is not live: refused as stale if the task
// exists (it finished or moved on), NotFound otherwise.
Status NotLive(Store* store, const std::string& ns, const std::string& id) {
  auto t = store->GetTask(ns, id);
  if (!t.ok()) return t.status();
  return Aborted("stale lease: task " + id + " is " + std::string(TaskStateName(t->state)));
}

}  // namespace

template <typename T>
void TaskService::WorkerCall(const std::string& ns, const std::string& id, const Step<T>& step,
                             Callback<T> done) {
  Status s;
  {
    MutexLock lock(&mu_);
    s = MutateLocked<T>(Admit::kWrite, step,
                        [done](const Status& c, T value) { Respond(done, c, std::move(value)); });
  }
  if (s.ok()) return;
  done(s.code() == StatusCode::kNotFound ? NotLive(store_, ns, id) : s);
}

void TaskService::Heartbeat(const std::string& ns, const std::string& id, const std::string& token,
                            std::int64_t lease_ms, Callback<HeartbeatOutcome> done) {
  WorkerCall<HeartbeatOutcome>(
      ns, id,
      [&](Engine& engine, TimeMs now, EngineOutput* out) { return engine.Heartbeat(ns, id, token, lease_ms, now, out); },
      std::move(done));
}

void TaskService::Complete(const std::string& ns, const std::string& id, const std::string& token,
                           std::string result, Callback<Task> done) {
  WorkerCall<Task>(
      ns, id,
      [&](Engine& engine, TimeMs now, EngineOutput* out) {
        return engine.Complete(ns, id, token, std::move(result), now, out);
      },
      std::move(done));
}

void TaskService::Fail(const std::string& ns, const std::string& id, const std::string& token,
                       std::string error, bool retry, std::string result,
                       Callback<Task> done) {
  WorkerCall<Task>(
      ns, id,
      [&](Engine& engine, TimeMs now, EngineOutput* out) {
        return engine.Fail(ns, id, token, std::move(error), retry, std::move(result), now, out);
      },
      std::move(done));
}

void TaskService::Ack(const std::string& ns, std::vector<AckItem> items,
                      Callback<std::vector<AckOutcome>> done) {
  Status s;
  {
    MutexLock lock(&mu_);
    s = MutateLocked<std::vector<AckOutcome>>(
        Admit::kWrite,
        [&](Engine& e, TimeMs now, EngineOutput* out) {
          std::vector<AckOutcome> outcomes(items.size());
          for (std::size_t i = 0; i < items.size(); ++i) {
            AckItem& item = items[i];
            outcomes[i].id = item.id;
            auto r = item.success
                         ? e.Complete(ns, item.id, item.token, std::move(item.result), now, out)
                         : e.Fail(ns, item.id, item.token, std::move(item.error), item.retry,
                                  std::move(item.result), now, out);
            if (r.ok()) {
              outcomes[i].state = r->state;
            } else {
              outcomes[i].status = r.status();  // NotFound: not live, looked up below
            }
          }
          return StatusOr<std::vector<AckOutcome>>(std::move(outcomes));
        },
        [this, ns, done](const Status& c, std::vector<AckOutcome> outcomes) {
          // Committed: an item on a task that is not live is stale if the
          // task exists (it finished or moved on), unknown otherwise.
          for (AckOutcome& o : outcomes) {
            if (o.status.code() == StatusCode::kNotFound) {
              o.status = NotLive(store_, ns, o.id);
            } else if (o.status.ok() && !c.ok()) {
              o.status = c;
            }
          }
          done(std::move(outcomes));
        });
  }
  if (!s.ok()) done(s);
}

// ---------------------------------------------------------------- queues

StatusOr<std::vector<QueueInfo>> TaskService::Queues(const std::string& ns) {
  MutexLock lock(&mu_);
  return engine_.Queues(ns);
}

StatusOr<QueueInfo> TaskService::GetQueue(const std::string& ns, const std::string& name) {
  MutexLock lock(&mu_);
  auto q = engine_.FindQueue(ns, name);
  if (!q) return NotFound("no queue '" + name + "' in namespace '" + ns + "'");
  return *q;
}

// ---------------------------------------------------------------- schedules

void TaskService::CreateSchedule(ScheduleSpec spec, Callback<Schedule> done) {
  Mutate<Schedule>(
      Admit::kWrite,
      [&](Engine& e, TimeMs now, EngineOutput* out) { return e.CreateSchedule(std::move(spec), now, out); },
      std::move(done));
}

void TaskService::PatchSchedule(const std::string& ns, const std::string& id, SchedulePatch patch,
                                Callback<Schedule> done) {
  Mutate<Schedule>(
      Admit::kWrite,
      [&](Engine& e, TimeMs now, EngineOutput* out) -> StatusOr<Schedule> {
        auto current = e.FindSchedule(ns, id, 0, now);
        if (!current) return NotFound("no schedule '" + id + "' in namespace '" + ns + "'");
        auto spec = patch(current->spec);
        if (!spec.ok()) return spec.status();
        spec->ns = ns;
        spec->id = id;
        return e.UpdateSchedule(std::move(*spec), now, out);
      },
      std::move(done));
}

void TaskService::DeleteSchedule(const std::string& ns, const std::string& id,
                                 Callback<bool> done) {
  Mutate<bool>(
      Admit::kWrite,
      [&](Engine& e, TimeMs, EngineOutput* out) -> StatusOr<bool> {
        DRAY_RETURN_IF_ERROR(e.DeleteSchedule(ns, id, out));
        return true;
      },
      std::move(done));
}

StatusOr<Schedule> TaskService::GetSchedule(const std::string& ns, const std::string& id,
                                            std::size_t next_n) {
  MutexLock lock(&mu_);
  auto s = engine_.FindSchedule(ns, id, next_n, clock_->NowMs());
  if (!s) return NotFound("no schedule '" + id + "' in namespace '" + ns + "'");
  return *s;
}

std::vector<Schedule> TaskService::ListSchedules(const std::string& ns, const std::string& after,
                                                 std::size_t limit, std::size_t next_n) {
  MutexLock lock(&mu_);
  return engine_.ListSchedules(ns, after, limit, next_n, clock_->NowMs());
}

void TaskService::PatchQueue(const std::string& ns, const std::string& name,
                             std::function<Status(QueueSettings*)> patch,
                             Callback<QueueInfo> done) {
  Mutate<QueueInfo>(
      Admit::kWrite,
      [&](Engine& e, TimeMs, EngineOutput* out) -> StatusOr<QueueInfo> {
        auto r = e.PatchQueue(ns, name, patch, out);
        if (!r.ok()) return r.status();
        return *e.FindQueue(ns, name);
      },
      std::move(done));
}

}  // namespace dray
