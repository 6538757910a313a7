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
  Status s;
  {
    MutexLock lock(&mu_);
    s = MutateLocked<Engine::EventOutcome>(
        Admit::kWrite,
        [&](Engine& e, TimeMs now, EngineOutput* out) {
          return e.EmitEvent(
              std::move(spec),
              [&payload](const TriggerSpec& t) { return MatchPayload(payload, t.match); }, now,
              out);
        },
        [this, done](const Status& c, Engine::EventOutcome r) {
          if (!c.ok()) return done(c);
          if (!r.duplicate) return done(EventAnswer{std::move(r.event), false});
          // As first recorded, read now that its commit (perhaps in flight
          // when this one was made) is done.
          auto e = store_->GetEvent(r.event.ns, r.event.id);
          if (!e.ok()) return done(e.status());
          done(EventAnswer{std::move(*e), true});
        });
  }
  if (!s.ok()) done(s);
}

StatusOr<Event> TaskService::GetEvent(const std::string& ns, const std::string& id) {
  return store_->GetEvent(ns, id);
}

void TaskService::CreateTrigger(TriggerSpec spec, Callback<Trigger> done) {
  Mutate<Trigger>(
      Admit::kWrite,
      [&](Engine& e, TimeMs now, EngineOutput* out) { return e.CreateTrigger(std::move(spec), now, out); },
      std::move(done));
}

void TaskService::SetTriggerPaused(const std::string& ns, const std::string& id, bool paused,
                                   Callback<Trigger> done) {
  Mutate<Trigger>(
      Admit::kWrite,
      [&](Engine& e, TimeMs now, EngineOutput* out) { return e.SetTriggerPaused(ns, id, paused, now, out); },
      std::move(done));
}

void TaskService::DeleteTrigger(const std::string& ns, const std::string& id,
                                Callback<bool> done) {
  Mutate<bool>(
      Admit::kWrite,
      [&](Engine& e, TimeMs, EngineOutput* out) -> StatusOr<bool> {
        DRAY_RETURN_IF_ERROR(e.DeleteTrigger(ns, id, out));
        return true;
      },
      std::move(done));
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
  Mutate<std::vector<BroadcastCopy>>(
      Admit::kSubmit,
      [&](Engine& e, TimeMs now, EngineOutput* out) { return e.SubmitBroadcast(std::move(spec), now, out); },
      std::move(done));
}

void TaskService::RegisterWorker(WorkerSpec spec, Callback<WorkerInfo> done) {
  Mutate<WorkerInfo>(
      Admit::kWrite,
      [&](Engine& e, TimeMs now, EngineOutput* out) -> StatusOr<WorkerInfo> {
        return e.RegisterWorker(std::move(spec), now, out);
      },
      std::move(done));
}

void TaskService::WorkerHeartbeat(const std::string& ns, const std::string& id,
                                  Callback<WorkerInfo> done) {
  Mutate<WorkerInfo>(
      Admit::kWrite,
      [&](Engine& e, TimeMs now, EngineOutput* out) { return e.WorkerHeartbeat(ns, id, now, out); },
      std::move(done));
}

void TaskService::DeregisterWorker(const std::string& ns, const std::string& id,
                                   Callback<bool> done) {
  Mutate<bool>(
      Admit::kWrite,
      [&](Engine& e, TimeMs now, EngineOutput* out) -> StatusOr<bool> {
        DRAY_RETURN_IF_ERROR(e.DeregisterWorker(ns, id, now, out));
        return true;
      },
      std::move(done));
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
