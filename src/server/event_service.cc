// TaskService: events and triggers (issue 6, docs/events.md).
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "core/json_codec.h"
#include "server/task_service.h"

namespace json = boost::json;

namespace dray {

void TaskService::EmitEvent(EventSpec spec, Callback<EventAnswer> done) {
  // The payload is read once, outside the lock, for the triggers' matches.
  boost::system::error_code ec;
  const json::value payload = json::parse(spec.payload, ec);
  if (ec) return done(InvalidArgument("field 'payload' is not JSON"));
  const std::string ns = spec.ns;
  MutexLock lock(&mu_);
  if (Status s = AcceptingLocked(); !s.ok()) return done(s);
  EngineOutput out;
  auto r = engine_.EmitEvent(
      std::move(spec),
      [&payload](const TriggerSpec& t) { return MatchPayload(payload, t.match); },
      clock_->NowMs(), &out);
  if (!r.ok()) return done(r.status());
  if (r->duplicate) {
    // As first recorded: read once its commit (perhaps in flight) is done.
    CommitLocked(std::move(out), [this, ns, id = r->event.id, done](const Status& s) {
      if (!s.ok()) return done(s);
      boost::asio::post(ioc_, [this, ns, id, done] {
        auto e = store_->GetEvent(ns, id);
        if (!e.ok()) return done(e.status());
        done(EventAnswer{std::move(*e), true});
      });
    });
    return;
  }
  CommitLocked(std::move(out), [this, done, event = std::move(r->event)](const Status& s) {
    if (!s.ok()) return done(s);
    boost::asio::post(ioc_, [done, event] { done(EventAnswer{event, false}); });
  });
}

StatusOr<Event> TaskService::GetEvent(const std::string& ns, const std::string& id) {
  return store_->GetEvent(ns, id);
}

void TaskService::CreateTrigger(TriggerSpec spec, Callback<Trigger> done) {
  MutexLock lock(&mu_);
  if (Status s = AcceptingLocked(); !s.ok()) return done(s);
  EngineOutput out;
  auto r = engine_.CreateTrigger(std::move(spec), clock_->NowMs(), &out);
  if (!r.ok()) return done(r.status());
  CommitLocked(std::move(out), [this, done, t = std::move(*r)](const Status& s) {
    if (!s.ok()) return done(s);
    boost::asio::post(ioc_, [done, t] { done(t); });
  });
}

void TaskService::SetTriggerPaused(const std::string& ns, const std::string& id, bool paused,
                                   Callback<Trigger> done) {
  MutexLock lock(&mu_);
  if (Status s = AcceptingLocked(); !s.ok()) return done(s);
  EngineOutput out;
  auto r = engine_.SetTriggerPaused(ns, id, paused, clock_->NowMs(), &out);
  if (!r.ok()) return done(r.status());
  CommitLocked(std::move(out), [this, done, t = std::move(*r)](const Status& s) {
    if (!s.ok()) return done(s);
    boost::asio::post(ioc_, [done, t] { done(t); });
  });
}

void TaskService::DeleteTrigger(const std::string& ns, const std::string& id,
                                Callback<bool> done) {
  MutexLock lock(&mu_);
  if (Status s = AcceptingLocked(); !s.ok()) return done(s);
  EngineOutput out;
  if (Status s = engine_.DeleteTrigger(ns, id, &out); !s.ok()) return done(s);
  CommitLocked(std::move(out), [this, done](const Status& s) {
    if (!s.ok()) return done(s);
    boost::asio::post(ioc_, [done] { done(true); });
  });
}

StatusOr<Trigger> TaskService::GetTrigger(const std::string& ns, const std::string& id) {
  MutexLock lock(&mu_);
  auto t = engine_.FindTrigger(ns, id);
  if (!t) return NotFound("no trigger '" + id + "' in namespace '" + ns + "'");
  return *t;
}

std::vector<Trigger> TaskService::ListTriggers(const std::string& ns, const std::string& after,
                                               std::size_t limit) {
  MutexLock lock(&mu_);
  return engine_.ListTriggers(ns, after, limit);
}

Status TaskService::Stream(ChangeFilter filter, const std::string& last_event_id,
                          const std::shared_ptr<HttpStream>& out) {
  MutexLock lock(&mu_);  // orders the subscription against CommitLocked
  if (stopped_) return Unavailable("server is stopping");
  std::optional<Task> current;
  if (!filter.task.empty()) {
    current = engine_.Find(filter.ns, filter.task);
    if (!current) {
      auto stored = store_->GetTask(filter.ns, filter.task);
      if (!stored.ok()) return stored.status();
      current = std::move(*stored);
    }
  }
  feed_->Subscribe(std::move(filter), last_event_id, out,
                   last_event_id.empty() && current ? &*current : nullptr);
  return Status::Ok();
}

// ---------------------------------------------------------------- workers

void TaskService::Broadcast(TaskSpec spec, Callback<std::vector<BroadcastCopy>> done) {
  MutexLock lock(&mu_);
  if (Status s = AcceptingLocked(); !s.ok()) return done(s);
  if (Status s = Admission(); !s.ok()) return done(s);
  EngineOutput out;
  auto r = engine_.SubmitBroadcast(std::move(spec), clock_->NowMs(), &out);
  if (!r.ok()) {
    CommitLocked(std::move(out), nullptr);
    return done(r.status());
  }
  CommitLocked(std::move(out), [this, done, copies = std::move(*r)](const Status& s) {
    if (!s.ok()) return done(s);
    boost::asio::post(ioc_, [done, copies] { done(copies); });
  });
}

void TaskService::RegisterWorker(WorkerSpec spec, Callback<WorkerInfo> done) {
  MutexLock lock(&mu_);
  if (Status s = AcceptingLocked(); !s.ok()) return done(s);
  EngineOutput out;
  WorkerInfo w = engine_.RegisterWorker(std::move(spec), clock_->NowMs(), &out);
  CommitLocked(std::move(out), [this, done, w = std::move(w)](const Status& s) {
    if (!s.ok()) return done(s);
    boost::asio::post(ioc_, [done, w] { done(w); });
  });
}

void TaskService::WorkerHeartbeat(const std::string& ns, const std::string& id,
                                  Callback<WorkerInfo> done) {
  MutexLock lock(&mu_);
  if (Status s = AcceptingLocked(); !s.ok()) return done(s);
  EngineOutput out;
  auto r = engine_.WorkerHeartbeat(ns, id, clock_->NowMs(), &out);
  if (!r.ok()) {
    CommitLocked(std::move(out), nullptr);
    return done(r.status());
  }
  CommitLocked(std::move(out), [this, done, w = std::move(*r)](const Status& s) {
    if (!s.ok()) return done(s);
    boost::asio::post(ioc_, [done, w] { done(w); });
  });
}

void TaskService::DeregisterWorker(const std::string& ns, const std::string& id,
                                   Callback<bool> done) {
  MutexLock lock(&mu_);
  if (Status s = AcceptingLocked(); !s.ok()) return done(s);
  EngineOutput out;
  Status s = engine_.DeregisterWorker(ns, id, clock_->NowMs(), &out);
  if (!s.ok()) {
    CommitLocked(std::move(out), nullptr);
    return done(s);
  }
  CommitLocked(std::move(out), [this, done](const Status& st) {
    if (!st.ok()) return done(st);
    boost::asio::post(ioc_, [done] { done(true); });
  });
}

StatusOr<WorkerInfo> TaskService::GetWorker(const std::string& ns, const std::string& id) {
  MutexLock lock(&mu_);
  auto w = engine_.FindWorker(ns, id);
  if (!w) return NotFound("worker '" + id + "' is not registered");
  return *w;
}

std::vector<WorkerInfo> TaskService::Workers(const std::string& ns) {
  MutexLock lock(&mu_);
  return engine_.Workers(ns);
}

}  // namespace dray
