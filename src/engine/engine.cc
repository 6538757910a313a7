#include "engine/engine.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace dray {

struct Engine::Live {
  Task task;
  QueueState* queue = nullptr;
  std::size_t ready_pos = kNotInHeap;
  std::size_t timer_pos = kNotInHeap;
  TimeMs timer_at = 0;         // when the timer heap should look at it
  std::int64_t lease_ms = 0;   // the current attempt's lease duration
};

struct Engine::QueueState {
  std::string ns;
  std::string name;
  QueueSettings settings;
  ReadyHeap ready;
  std::array<std::int64_t, 8> counts{};  // tasks by TaskState value (finished: until purged)
};

bool Engine::ReadyLess::operator()(const Live* a, const Live* b) const {
  if (a->task.priority != b->task.priority) return a->task.priority < b->task.priority;
  return a->task.seq < b->task.seq;
}
std::size_t& Engine::ReadyPos::operator()(Live* l) const { return l->ready_pos; }
bool Engine::TimerLess::operator()(const Live* a, const Live* b) const {
  if (a->timer_at != b->timer_at) return a->timer_at < b->timer_at;
  return a->task.seq < b->task.seq;
}
std::size_t& Engine::TimerPos::operator()(Live* l) const { return l->timer_pos; }

namespace {

std::string KeyOf(const std::string& ns, const std::string& key) {
  std::string k;
  k.reserve(ns.size() + 1 + key.size());
  k.append(ns).push_back('\0');
  k.append(key);
  return k;
}

std::optional<std::uint64_t> ParseToken(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// When a running attempt must end at the latest: its timeout, if any.
TimeMs AttemptDeadline(const Task& t) {
  if (t.timeout_ms <= 0 || t.history.empty()) return 0;
  return t.history.back().started_at + t.timeout_ms;
}

}  // namespace

Engine::Engine(EngineOptions options)
    : options_(options), rng_(options.seed ? options.seed : std::random_device{}()) {}

Engine::~Engine() = default;

// ---------------------------------------------------------------- indexes

Engine::QueueState& Engine::QueueFor(const std::string& ns, const std::string& name,
                                     EngineOutput* out) {
  auto key = std::make_pair(ns, name);
  auto it = queues_.find(key);
  if (it != queues_.end()) return *it->second;
  auto q = std::make_unique<QueueState>();
  q->ns = ns;
  q->name = name;
  QueueState& ref = *q;
  queues_.emplace(std::move(key), std::move(q));
  if (out) out->mutations.push_back(Mutation::PutQueue(QueueRecord{ns, name, ref.settings}));
  return ref;
}

void Engine::Index(Live* l) {
  Task& t = l->task;
  l->queue->counts[static_cast<std::size_t>(t.state)]++;
  switch (t.state) {
    case TaskState::kReady:
      l->queue->ready.push(l);
      break;
    case TaskState::kScheduled:
      l->timer_at = t.run_at;
      timers_.push(l);
      break;
    case TaskState::kRunning: {
      TimeMs deadline = AttemptDeadline(t);
      l->timer_at = deadline ? std::min(deadline, t.lease_expires_at) : t.lease_expires_at;
      timers_.push(l);
      break;
    }
    default:
      break;
  }
}

void Engine::Unindex(Live* l) {
  l->queue->counts[static_cast<std::size_t>(l->task.state)]--;
  l->queue->ready.erase(l);
  timers_.erase(l);
}

void Engine::Emit(const Live* l, bool created, EngineOutput* out) {
  auto snapshot = std::make_shared<const Task>(l->task);
  out->mutations.push_back(created ? Mutation::PutTask(std::move(snapshot))
                                   : Mutation::UpdateTask(std::move(snapshot)));
  out->changed.push_back(l->task.id);
}

void Engine::Insert(Task&& task, EngineOutput* out) {
  auto l = std::make_unique<Live>();
  l->queue = &QueueFor(task.ns, task.queue, out);
  l->task = std::move(task);
  if (l->task.state == TaskState::kRunning) l->lease_ms = LeaseMsFor(l.get(), 0);
  Live* raw = l.get();
  tasks_[raw->task.id] = std::move(l);
  Index(raw);
  if (out) {
    Emit(raw, /*created=*/true, out);
    if (raw->task.state == TaskState::kReady) out->made_ready = true;
  }
}

std::int64_t Engine::LeaseMsFor(const Live* l, std::int64_t requested) const {
  if (requested > 0) return requested;
  if (l->task.lease_ms > 0) return l->task.lease_ms;
  return l->queue->settings.lease_ms;
}

Engine::Live* Engine::FindLive(const std::string& ns, const std::string& id) const {
  auto it = tasks_.find(id);
  if (it == tasks_.end() || it->second->task.ns != ns) return nullptr;
  return it->second.get();
}

Status Engine::Step(Live* l, const EventInput& event, const ApplyInput& in, EngineOutput* out,
                    Task* after) {
  auto decision = Decide(l->task, event, in.now);
  if (!decision.ok()) return decision.status();
  Unindex(l);
  Apply(*decision, in, &l->task);
  Emit(l, /*created=*/false, out);
  if (after) *after = l->task;
  if (IsTerminal(l->task.state)) {
    l->queue->counts[static_cast<std::size_t>(l->task.state)]++;
    out->finished.push_back(l->task.id);
    tasks_.erase(l->task.id);  // destroys *l
    return Status::Ok();
  }
  Index(l);
  if (l->task.state == TaskState::kReady) out->made_ready = true;
  return Status::Ok();
}

// ---------------------------------------------------------------- recovery

void Engine::RestoreQueue(const QueueRecord& q) {
  QueueFor(q.ns, q.name, nullptr).settings = q.settings;
}

void Engine::RestoreTask(Task&& task) {
  next_seq_ = std::max(next_seq_, task.seq + 1);
  next_token_ = std::max(next_token_, task.lease_token + 1);
  Insert(std::move(task), nullptr);
}

void Engine::RestoreKey(const std::string& ns, const std::string& key, const std::string& id,
                        TimeMs created_at) {
  std::string k = KeyOf(ns, key);
  auto [it, inserted] = keys_.try_emplace(k, KeyEntry{id, created_at});
  if (!inserted) {
    if (it->second.created_at >= created_at) return;
    it->second = KeyEntry{id, created_at};
  }
  key_order_.emplace_back(created_at, std::move(k));
}

void Engine::RestoreFinishedCounts(const std::vector<StateCount>& counts) {
  for (const StateCount& c : counts) {
    if (!IsTerminal(c.state)) continue;
    QueueFor(c.ns, c.queue, nullptr).counts[static_cast<std::size_t>(c.state)] = c.count;
  }
}

void Engine::ForgetFinished(const std::string& ns, const std::string& queue, TaskState state) {
  auto it = queues_.find(std::make_pair(ns, queue));
  if (it == queues_.end()) return;
  std::int64_t& n = it->second->counts[static_cast<std::size_t>(state)];
  if (n > 0) --n;
}

void Engine::RestoreMarks(const StoreMarks& marks) {
  next_token_ = std::max(next_token_, marks.max_lease_token + 1);
  next_seq_ = std::max(next_seq_, marks.max_seq + 1);
}

// ---------------------------------------------------------------- producers

StatusOr<std::vector<SubmitOutcome>> Engine::Submit(std::vector<TaskSpec>&& specs, TimeMs now,
                                                    EngineOutput* out) {
  Tick(now, out);
  if (tasks_.size() + specs.size() > options_.max_live_tasks) {
    return ResourceExhausted("the server holds " + std::to_string(tasks_.size()) +
                             " live tasks; the limit is " +
                             std::to_string(options_.max_live_tasks));
  }
  std::vector<SubmitOutcome> outcomes;
  outcomes.reserve(specs.size());
  for (TaskSpec& spec : specs) {
    std::string key;
    if (!spec.key.empty()) {
      key = KeyOf(spec.ns, spec.key);
      auto it = keys_.find(key);
      if (it != keys_.end() && it->second.created_at + options_.idempotency_window_ms > now) {
        outcomes.push_back(SubmitOutcome{it->second.id, false});
        continue;
      }
    }
    QueueState& q = QueueFor(spec.ns, spec.queue, out);
    Task t;
    t.id = ids_.Next(now);
    t.ns = std::move(spec.ns);
    t.queue = std::move(spec.queue);
    t.type = std::move(spec.type);
    t.payload = std::move(spec.payload);
    t.priority = spec.priority;
    t.run_at = spec.run_at ? *spec.run_at : now + spec.delay_ms.value_or(0);
    t.max_attempts = spec.max_attempts.value_or(q.settings.max_attempts);
    t.backoff = spec.backoff.value_or(q.settings.backoff);
    t.timeout_ms = spec.timeout_ms.value_or(0);
    t.lease_ms = spec.lease_ms.value_or(0);
    t.key = std::move(spec.key);
    t.labels = std::move(spec.labels);
    t.state = InitialState(false, t.run_at, now);
    t.created_at = now;
    t.updated_at = now;
    t.seq = next_seq_++;
    if (!key.empty()) {
      keys_[key] = KeyEntry{t.id, now};
      key_order_.emplace_back(now, key);
    }
    outcomes.push_back(SubmitOutcome{t.id, true});
    Insert(std::move(t), out);
  }
  return outcomes;
}

StatusOr<Task> Engine::Cancel(const std::string& ns, const std::string& id, TimeMs now,
                              EngineOutput* out) {
  Tick(now, out);
  Live* l = FindLive(ns, id);
  if (!l) return NotFound("task " + id + " is not live");
  ApplyInput in{now};
  in.error = "cancelled by request";
  Task after;
  DRAY_RETURN_IF_ERROR(Step(l, EventInput{TaskEvent::kCancel}, in, out, &after));
  return after;
}

StatusOr<Task> Engine::Retry(Task stored, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  if (tasks_.count(stored.id)) {
    return FailedPrecondition("task " + stored.id + " is already live");
  }
  auto decision = Decide(stored, EventInput{TaskEvent::kRetry}, now);
  if (!decision.ok()) return decision.status();
  ForgetFinished(stored.ns, stored.queue, stored.state);  // it is live again
  Apply(*decision, ApplyInput{now}, &stored);
  Task copy = stored;
  Insert(std::move(stored), out);
  return copy;
}

// ---------------------------------------------------------------- workers

StatusOr<std::vector<LeasedTask>> Engine::Lease(const LeaseRequest& req, TimeMs now,
                                                EngineOutput* out) {
  Tick(now, out);
  std::vector<QueueState*> qs;
  for (const std::string& name : req.queues) {
    auto it = queues_.find(std::make_pair(req.ns, name));
    if (it != queues_.end() && !it->second->settings.paused) qs.push_back(it->second.get());
  }
  std::vector<LeasedTask> leased;
  while (leased.size() < req.max) {
    QueueState* best = nullptr;
    for (QueueState* q : qs) {
      if (q->ready.empty()) continue;
      if (!best || ReadyLess()(q->ready.top(), best->ready.top())) best = q;
    }
    if (!best) break;
    Live* l = best->ready.top();
    l->lease_ms = LeaseMsFor(l, req.lease_ms);
    ApplyInput in{now};
    in.worker = req.worker;
    in.lease_token = next_token_++;
    in.lease_expires_at = now + l->lease_ms;
    Status s = Step(l, EventInput{TaskEvent::kLease}, in, out);
    if (!s.ok()) return s;  // cannot happen: ready tasks accept a lease
    leased.push_back(LeasedTask{l->task, dray::Lease{std::to_string(l->task.lease_token),
                                               l->task.lease_expires_at}});
  }
  return leased;
}

StatusOr<Engine::Live*> Engine::FindLeased(const std::string& ns, const std::string& id,
                                           std::string_view token) {
  Live* l = FindLive(ns, id);
  if (!l) return NotFound("task " + id + " is not live");
  auto tok = ParseToken(token);
  if (!tok) return InvalidArgument("field 'lease' must be the token a lease returned");
  if (l->task.state != TaskState::kRunning) {
    return Aborted("stale lease: task " + id + " is " +
                   std::string(TaskStateName(l->task.state)) + ", not running under this lease");
  }
  if (*tok != l->task.lease_token) {
    return Aborted("stale lease: task " + id + " is running under a different lease");
  }
  return l;
}

StatusOr<HeartbeatOutcome> Engine::Heartbeat(const std::string& ns, const std::string& id,
                                             std::string_view token, std::int64_t lease_ms,
                                             TimeMs now, EngineOutput* out) {
  Tick(now, out);
  auto found = FindLeased(ns, id, token);
  if (!found.ok()) return found.status();
  Live* l = *found;
  if (lease_ms > 0) l->lease_ms = lease_ms;
  ApplyInput in{now};
  in.lease_expires_at = now + l->lease_ms;
  DRAY_RETURN_IF_ERROR(Step(l, EventInput{TaskEvent::kHeartbeat}, in, out));
  return HeartbeatOutcome{l->task.lease_expires_at, l->task.cancel_requested};
}

StatusOr<Task> Engine::Complete(const std::string& ns, const std::string& id,
                                std::string_view token, std::string result, TimeMs now,
                                EngineOutput* out) {
  Tick(now, out);
  auto found = FindLeased(ns, id, token);
  if (!found.ok()) return found.status();
  Live* l = *found;
  ApplyInput in{now};
  in.result = result;
  Task after;
  DRAY_RETURN_IF_ERROR(Step(l, EventInput{TaskEvent::kComplete}, in, out, &after));
  return after;
}

StatusOr<Task> Engine::Fail(const std::string& ns, const std::string& id, std::string_view token,
                            std::string error, bool retry, std::string result, TimeMs now,
                            EngineOutput* out) {
  Tick(now, out);
  auto found = FindLeased(ns, id, token);
  if (!found.ok()) return found.status();
  Live* l = *found;
  EventInput ev{TaskEvent::kFail, retry, std::uniform_real_distribution<double>(0, 1)(rng_)};
  ApplyInput in{now};
  in.error = error;
  in.result = result;
  Task after;
  DRAY_RETURN_IF_ERROR(Step(l, ev, in, out, &after));
  return after;
}

// ---------------------------------------------------------------- waiters

void Engine::AddWaiter(std::uint64_t waiter_id, LeaseRequest req) {
  waiters_.emplace(waiter_id, Waiter{waiter_id, std::move(req)});
}

void Engine::RemoveWaiter(std::uint64_t waiter_id) { waiters_.erase(waiter_id); }

std::vector<std::pair<std::uint64_t, std::vector<LeasedTask>>> Engine::ServeWaiters(
    TimeMs now, EngineOutput* out) {
  std::vector<std::pair<std::uint64_t, std::vector<LeasedTask>>> served;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    auto leased = Lease(it->second.req, now, out);
    if (leased.ok() && !leased->empty()) {
      served.emplace_back(it->first, std::move(*leased));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  return served;
}

// ---------------------------------------------------------------- time

void Engine::Tick(TimeMs now, EngineOutput* out) {
  while (Live* l = timers_.top()) {
    if (l->timer_at > now) break;
    Task& t = l->task;
    Status s;
    ApplyInput in{now};
    EventInput ev{TaskEvent::kDue};
    std::string error;
    if (t.state == TaskState::kRunning) {
      ev.jitter_u = std::uniform_real_distribution<double>(0, 1)(rng_);
      TimeMs deadline = AttemptDeadline(t);
      if (deadline && deadline <= now) {
        ev.event = TaskEvent::kTimeout;
        error = "attempt timed out after " + std::to_string(t.timeout_ms) + " ms";
      } else {
        ev.event = TaskEvent::kExpire;
        error = "lease expired: worker " + t.worker + " sent no heartbeat within " +
                std::to_string(l->lease_ms) + " ms";
      }
      in.error = error;
    }
    s = Step(l, ev, in, out);
    if (!s.ok()) timers_.erase(l);  // a timer the state no longer needs
  }
  PruneKeys(now);
}

std::optional<TimeMs> Engine::NextWakeup() const {
  if (const Live* l = timers_.top()) return l->timer_at;
  return std::nullopt;
}

void Engine::PruneKeys(TimeMs now) {
  while (!key_order_.empty() &&
         key_order_.front().first + options_.idempotency_window_ms <= now) {
    auto it = keys_.find(key_order_.front().second);
    // The map may hold a newer task for the same key: keep that one.
    if (it != keys_.end() && it->second.created_at == key_order_.front().first) keys_.erase(it);
    key_order_.pop_front();
  }
}

// ---------------------------------------------------------------- queues

StatusOr<QueueSettings> Engine::PatchQueue(const std::string& ns, const std::string& name,
                                           const std::function<Status(QueueSettings*)>& patch,
                                           EngineOutput* out) {
  QueueState* existing = nullptr;
  if (auto it = queues_.find(std::make_pair(ns, name)); it != queues_.end()) {
    existing = it->second.get();
  }
  QueueSettings s = existing ? existing->settings : QueueSettings{};
  DRAY_RETURN_IF_ERROR(patch(&s));
  QueueState& q = existing ? *existing : QueueFor(ns, name, nullptr);
  const bool resumed = q.settings.paused && !s.paused;
  q.settings = s;
  out->mutations.push_back(Mutation::PutQueue(QueueRecord{ns, name, s}));
  if (resumed && !q.ready.empty()) out->made_ready = true;
  return s;
}

namespace {
QueueInfo InfoOf(const std::string& ns, const std::string& name, const QueueSettings& s,
                 const std::array<std::int64_t, 8>& counts) {
  QueueInfo info;
  info.ns = ns;
  info.name = name;
  info.settings = s;
  for (TaskState st : kAllTaskStates) info.counts[st] = counts[static_cast<std::size_t>(st)];
  return info;
}
}  // namespace

std::vector<QueueInfo> Engine::Queues(const std::string& ns) const {
  std::vector<QueueInfo> out;
  for (auto it = queues_.lower_bound(std::make_pair(ns, std::string()));
       it != queues_.end() && it->first.first == ns; ++it) {
    out.push_back(InfoOf(ns, it->first.second, it->second->settings, it->second->counts));
  }
  return out;
}

std::optional<QueueInfo> Engine::FindQueue(const std::string& ns, const std::string& name) const {
  auto it = queues_.find(std::make_pair(ns, name));
  if (it == queues_.end()) return std::nullopt;
  return InfoOf(ns, name, it->second->settings, it->second->counts);
}

const Task* Engine::Find(const std::string& ns, const std::string& id) const {
  const Live* l = FindLive(ns, id);
  return l ? &l->task : nullptr;
}

}  // namespace dray
