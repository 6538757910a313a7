#include "engine/engine.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>

#include "core/json_writer.h"
#include "core/time_format.h"
#include "engine/book_host.h"
#include "engine/engine_records.h"

namespace dray {

namespace {

// A rate limit's time between starts, and how far ahead of it a burst may go.
double IntervalMs(const QueueSettings& s) { return 1000.0 / s.rate; }
double ToleranceMs(const QueueSettings& s) { return (s.effective_burst() - 1) * IntervalMs(s); }

std::optional<std::uint64_t> ParseToken(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

Engine::Engine(EngineOptions options)
    : options_(options),
      rng_(options.seed ? options.seed : std::random_device{}()),
      pool_(live_, options.worker_grace_ms) {}

Engine::~Engine() = default;

// ---------------------------------------------------------------- indexes

QueueState& Engine::QueueFor(const std::string& ns, const std::string& name,
                                     EngineOutput* out) {
  auto key = std::make_pair(ns, name);
  auto it = queues_.find(key);
  if (it != queues_.end()) return *it->second;
  auto q = std::make_unique<QueueState>();
  q->ns = ns;
  q->name = name;
  QueueState& ref = *q;
  queues_.emplace(std::move(key), std::move(q));
  if (out) out->mutations.push_back(mutation::PutQueue{QueueRecord{ns, name, ref.settings}});
  return ref;
}

void Engine::Index(Live* l, EngineOutput* out) {
  l->queue->counts[l->state_value]++;
  KeyGroup* g = l->group();
  switch (l->state()) {
    case TaskState::kReady:
      if (!g) pool_.PushReady(l->queue, l);  // a keyed one: RefreshKey below decides
      break;
    case TaskState::kScheduled:
      timers_.push(l);
      break;
    case TaskState::kRunning: {
      if (!l->run) l->run = std::make_unique<RunState>();  // a running task has one
      const TimeMs expires = l->run->lease_expires_at;
      TimeMs deadline = AttemptDeadline(l);
      l->run->timer_at = deadline ? std::min(deadline, expires) : expires;
      timers_.push(l);
      if (g) g->running++;
      break;
    }
    default:
      break;
  }
  if (g) RefreshKey(l->queue, g, out);
}

// Takes it out of the heap its state put it in (heap_pos is shared).
void Engine::Unindex(Live* l) {
  l->queue->counts[l->state_value]--;
  switch (l->state()) {
    case TaskState::kReady:
      pool_.EraseReady(l->queue, l);
      break;
    case TaskState::kScheduled:
      timers_.erase(l);
      break;
    case TaskState::kRunning:
      timers_.erase(l);
      if (KeyGroup* g = l->group()) g->running--;
      break;
    default:
      break;
  }
}

std::int32_t Engine::KeyLimit(const QueueState& q, const KeyGroup& g) const {
  if (!g.members.empty()) {
    const Live* front = *g.members.begin();
    if (front->extra->concurrency_limit > 0) return front->extra->concurrency_limit;
  }
  return std::max(q.settings.key_concurrency, 1);
}

void Engine::RefreshKey(QueueState* q, KeyGroup* g, EngineOutput* out) {
  const std::int32_t limit = KeyLimit(*q, *g);
  // One past the larger of this limit and the last: a task that an earlier
  // one (restored out of order) or a lower limit pushed out of the window
  // leaves the heap.
  const std::int32_t scan = std::max(limit, g->window) + 1;
  std::int32_t rank = 0;
  for (auto it = g->members.begin(); it != g->members.end() && rank < scan; ++it, ++rank) {
    Live* m = *it;
    if (m->state() != TaskState::kReady) continue;
    const bool may_start = rank < limit && g->running < limit;
    const bool in_heap = m->heap_pos != kNotInHeap;
    if (may_start && !in_heap) {
      pool_.PushReady(q, m);
      if (out) out->made_ready = true;
    } else if (!may_start && in_heap) {
      pool_.EraseReady(q, m);
    }
  }
  g->window = limit;
}

void Engine::Emit(std::shared_ptr<const Task> snapshot, bool created, EngineOutput* out) {
  out->changed.push_back(snapshot->id);
  out->mutations.push_back(created ? Mutation(mutation::PutTask{std::move(snapshot)})
                                   : Mutation(mutation::UpdateTask{std::move(snapshot)}));
}

void Engine::Link(Live* l, const Task& t) {
  if (Deps* d = l->deps(); d && !t.workflow.empty()) {
    if (auto it = workflows_.find(std::make_pair(t.ns, t.workflow)); it != workflows_.end()) {
      d->workflow = it->second.get();
      d->workflow->unfinished++;
      d->workflow->tasks.push_back(l->id);
    }
  }
  if (!t.concurrency_key.empty()) {
    auto it = l->queue->keys.try_emplace(t.concurrency_key).first;
    it->second.key = &it->first;
    it->second.members.insert(l);
    l->extra->group = &it->second;
  }
}

Live* Engine::Insert(Task&& task, EngineOutput* out) {
  QueueState* q = &QueueFor(task.ns, task.queue, out);
  // The snapshot for the store takes the task itself; the compact form is
  // built from it (one copy of the payload fewer per submit).
  std::shared_ptr<const Task> snapshot;
  if (out) snapshot = std::make_shared<const Task>(std::move(task));
  const Task& whole = out ? *snapshot : task;
  LivePtr owned = live_.Compact(whole, q);
  Live* l = owned.get();
  Link(l, whole);
  live_.Insert(std::move(owned));
  Index(l, out);
  if (l->state() == TaskState::kRunning) l->run->lease_ms = LeaseMsFor(l, 0);
  if (out) {
    Emit(std::move(snapshot), /*created=*/true, out);
    if (l->state() == TaskState::kReady) out->made_ready = true;
  }
  return l;
}

std::int64_t Engine::LeaseMsFor(const Live* l, std::int64_t requested) const {
  if (requested > 0) return requested;
  if (l->extra && l->extra->spec_lease_ms > 0) return l->extra->spec_lease_ms;
  return l->queue->settings.lease_ms;
}

Live* Engine::FindLive(const std::string& ns, const std::string& id) const {
  auto bytes = ParseId(id);
  if (!bytes) return nullptr;
  Live* l = live_.Find(*bytes);
  if (!l || l->queue->ns != ns) return nullptr;
  return l;
}

Status Engine::Step(Live* l, const EventInput& event, const ApplyInput& in, EngineOutput* out,
                    Task* after) {
  Task t = LiveTable::Expand(l);
  auto decision = Decide(t, event, in.now);
  if (!decision.ok()) return decision.status();
  QueueState* q = l->queue;
  const bool was_running = l->state() == TaskState::kRunning;
  Unindex(l);
  // Registered workers keep the ids of the tasks they hold.
  const std::string old_worker = !pool_.empty() && was_running ? t.worker : std::string();
  Apply(*decision, in, &t);
  if (!pool_.empty()) {
    pool_.TrackRunning(l, t.ns, old_worker,
                       t.state == TaskState::kRunning ? t.worker : std::string(), t.id);
  }
  const bool terminal = IsTerminal(t.state);
  WorkflowLive* workflow = nullptr;
  if (terminal) {
    q->counts[static_cast<std::size_t>(t.state)]++;
    KeyGroup* g = l->group();
    if (g) g->members.erase(l);
    if (Deps* d = l->deps()) {
      workflow = d->workflow;
      if (!d->children.empty()) {
        cascade_.push_back(Finished{l->id, d->workflow_id, d->node, t.state,
                                    std::make_shared<const std::string>(t.result),
                                    std::move(d->children)});
      }
    }
    live_.Remove(l);  // destroys *l when the returned pointer goes
    if (g && g->members.empty()) {
      q->keys.erase(q->keys.find(*g->key));
    } else if (g) {
      RefreshKey(q, g, out);
    }
  } else {
    LiveTable::Absorb(l, t);
    Index(l, out);
    if (l->state() == TaskState::kReady && l->heap_pos != kNotInHeap) out->made_ready = true;
  }
  // A slot under the queue's concurrency limit, or a worker's capacity,
  // came free.
  if (was_running && (WorkerPool::HasReady(*q) || pool_.placed_ready() > 0)) {
    out->made_ready = true;
  }
  if (terminal) {
    out->finished.push_back(t.id);
    schedules_.TaskEnded(t.id, in.now);
    triggers_.TaskEnded(t);
  }
  auto snapshot = std::make_shared<const Task>(std::move(t));
  if (after) *after = *snapshot;
  const TaskState state = snapshot->state;
  Emit(std::move(snapshot), /*created=*/false, out);
  if (workflow) TaskOfWorkflowFinished(workflow, state, in.now, out);
  if (!draining_ && (!cascade_.empty() || triggers_.has_pending())) {
    draining_ = true;
    while (!cascade_.empty() || triggers_.has_pending()) {
      if (!cascade_.empty()) {
        Finished f = std::move(cascade_.front());
        cascade_.pop_front();
        Release(f, in.now, out);
        continue;
      }
      BookHost host(this, out);
      triggers_.FirePending(in.now, &host);
    }
    draining_ = false;
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- producers

StatusOr<std::vector<SubmitOutcome>> Engine::Submit(std::vector<TaskSpec>&& specs, TimeMs now,
                                                    EngineOutput* out) {
  Tick(now, out);
  if (live_.size() + specs.size() > options_.max_live_tasks) {
    return ResourceExhausted("the server holds " + std::to_string(live_.size()) +
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
    Task t = MakeTask(std::move(spec), QueueFor(spec.ns, spec.queue, out), now);
    if (!key.empty()) {
      keys_[key] = KeyEntry{t.id, now};
      key_order_.emplace_back(now, key);
    }
    outcomes.push_back(SubmitOutcome{t.id, true});
    Insert(std::move(t), out);
  }
  return outcomes;
}

Task Engine::MakeTask(TaskSpec&& spec, const QueueState& q, TimeMs now) {
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
  t.concurrency_key = std::move(spec.concurrency_key);
  t.concurrency_limit = spec.concurrency_limit.value_or(0);
  t.placement = std::move(spec.placement);
  t.state = InitialState(false, t.run_at, now);
  t.created_at = now;
  t.updated_at = now;
  t.seq = next_seq_++;
  return t;
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
  if (!ParseId(stored.id)) return NotFound("task " + stored.id + " does not exist");
  if (live_.Find(*ParseId(stored.id))) {
    return FailedPrecondition("task " + stored.id + " is already live");
  }
  if (!stored.workflow.empty() || !stored.depends_on.empty()) {
    return FailedPrecondition("task " + stored.id + " belongs to workflow " + stored.workflow +
                              ": its dependents were already settled, so it cannot run again "
                              "alone; submit the work again");
  }
  auto decision = Decide(stored, EventInput{TaskEvent::kRetry}, now);
  if (!decision.ok()) return decision.status();
  ForgetFinished(stored.ns, stored.queue, stored.state);  // it is live again
  Apply(*decision, ApplyInput{now}, &stored);
  // A retried task goes behind the tasks waiting now (a concurrency key's
  // order included): it is a new run, and running tasks of its key must
  // stay inside the key's window.
  stored.seq = next_seq_++;
  Task copy = stored;
  Insert(std::move(stored), out);
  return copy;
}

// ---------------------------------------------------------------- workers

StatusOr<std::vector<LeasedTask>> Engine::Lease(const LeaseRequest& req, TimeMs now,
                                                EngineOutput* out) {
  if (!pool_.empty()) pool_.Saw(pool_.Find(req.ns, req.worker), now);  // before Tick reaps
  Tick(now, out);
  std::vector<QueueState*> qs;
  for (const std::string& name : req.queues) {
    auto it = queues_.find(std::make_pair(req.ns, name));
    if (it == queues_.end() || it->second->settings.paused) continue;
    if (std::find(qs.begin(), qs.end(), it->second.get()) == qs.end()) {
      qs.push_back(it->second.get());
    }
  }
  WorkerPool::Worker* w = pool_.Find(req.ns, req.worker);
  std::vector<LeasedTask> leased;
  while (leased.size() < req.max) {
    QueueState* best = nullptr;
    Live* l = nullptr;
    double best_pass = 0;
    for (QueueState* q : qs) {
      if (!CanStart(q, now)) continue;
      Live* c = pool_.PickFor(q, w, waiters_, now, &out->made_ready);
      if (!c) continue;
      const double pass = std::max(q->pass, vtime_);
      if (!best || pass < best_pass || (pass == best_pass && ReadyLess()(c, l))) {
        best = q;
        l = c;
        best_pass = pass;
      }
    }
    if (!best) break;
    vtime_ = best_pass;
    best->pass = best_pass + 1.0 / std::max(best->settings.weight, 1);
    if (best->settings.rate > 0) {
      best->tat = std::max(best->tat, static_cast<double>(now)) + IntervalMs(best->settings);
    }
    const std::int64_t lease_ms = LeaseMsFor(l, req.lease_ms);
    ApplyInput in{now};
    in.worker = req.worker;
    in.lease_token = next_token_++;
    in.lease_expires_at = now + lease_ms;
    LeasedTask lt;
    Status s = Step(l, EventInput{TaskEvent::kLease}, in, out, &lt.task);
    if (!s.ok()) return s;  // cannot happen: ready tasks accept a lease
    l->run->lease_ms = lease_ms;
    lt.lease = dray::Lease{std::to_string(lt.task.lease_token), lt.task.lease_expires_at};
    lt.parents = ParentsOf(l);
    if (w) {
      if (auto h = w->running.find(lt.task.id); h != w->running.end()) lt.gpu_devices = h->second.gpus;
    }
    leased.push_back(std::move(lt));
  }
  return leased;
}

StatusOr<Live*> Engine::FindLeased(const std::string& ns, const std::string& id,
                                           std::string_view token) {
  Live* l = FindLive(ns, id);
  if (!l) return NotFound("task " + id + " is not live");
  auto tok = ParseToken(token);
  if (!tok) return InvalidArgument("field 'lease' must be the token a lease returned");
  if (l->state() != TaskState::kRunning) {
    return Aborted("stale lease: task " + id + " is " + std::string(TaskStateName(l->state())) +
                   ", not running under this lease");
  }
  if (*tok != l->lease_token()) {
    return Aborted("stale lease: task " + id + " is running under a different lease");
  }
  return l;
}

StatusOr<HeartbeatOutcome> Engine::Heartbeat(const std::string& ns, const std::string& id,
                                             std::string_view token, std::int64_t lease_ms,
                                             TimeMs now, EngineOutput* out) {
  pool_.SawHolder(ns, id, now);  // a sign of life from the worker, before Tick reaps
  Tick(now, out);
  auto found = FindLeased(ns, id, token);
  if (!found.ok()) return found.status();
  Live* l = *found;
  if (lease_ms > 0) l->run->lease_ms = lease_ms;
  ApplyInput in{now};
  in.lease_expires_at = now + l->run->lease_ms;
  DRAY_RETURN_IF_ERROR(Step(l, EventInput{TaskEvent::kHeartbeat}, in, out));
  return HeartbeatOutcome{l->run->lease_expires_at, l->run->cancel_requested};
}

StatusOr<Task> Engine::Complete(const std::string& ns, const std::string& id,
                                std::string_view token, std::string result, TimeMs now,
                                EngineOutput* out) {
  pool_.SawHolder(ns, id, now);  // a sign of life from the worker, before Tick reaps
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
  pool_.SawHolder(ns, id, now);  // a sign of life from the worker, before Tick reaps
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
  waiters_.emplace(waiter_id, std::move(req));
}

void Engine::RemoveWaiter(std::uint64_t waiter_id) { waiters_.erase(waiter_id); }

std::vector<std::pair<std::uint64_t, std::vector<LeasedTask>>> Engine::ServeWaiters(
    TimeMs now, EngineOutput* out) {
  std::vector<std::pair<std::uint64_t, std::vector<LeasedTask>>> served;
  // A waiter may pass a placed task over for a better one behind it (see
  // BetterWaiter); if that one took something else, the pass is repeated.
  for (bool again = true; again;) {
    again = false;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      auto leased = Lease(it->second, now, out);
      if (leased.ok() && !leased->empty()) {
        served.emplace_back(it->first, std::move(*leased));
        it = waiters_.erase(it);
        again = pool_.placed_ready() > 0;
      } else {
        ++it;
      }
    }
  }
  return served;
}

// ---------------------------------------------------------------- time

void Engine::Tick(TimeMs now, EngineOutput* out) {
  while (Live* l = timers_.top()) {
    if (l->timer_at() > now) break;
    Status s;
    ApplyInput in{now};
    EventInput ev{TaskEvent::kDue};
    std::string error;
    if (l->state() == TaskState::kRunning) {
      ev.jitter_u = std::uniform_real_distribution<double>(0, 1)(rng_);
      TimeMs deadline = AttemptDeadline(l);
      if (deadline && deadline <= now) {
        ev.event = TaskEvent::kTimeout;
        error = "attempt timed out after " + std::to_string(l->timeout_ms()) + " ms";
      } else {
        ev.event = TaskEvent::kExpire;
        error = "lease expired: worker " + (l->run ? l->run->worker : std::string()) +
                " sent no heartbeat within " + std::to_string(l->run ? l->run->lease_ms : 0) +
                " ms";
      }
      in.error = error;
    }
    s = Step(l, ev, in, out);
    if (!s.ok()) timers_.erase(l);  // a timer the state no longer needs
  }
  for (auto it = throttled_.begin(); it != throttled_.end();) {
    QueueState* q = *it;
    if (q->settings.rate > 0 && TokenAt(*q) > now) {
      ++it;
      continue;
    }
    if (WorkerPool::HasReady(*q)) out->made_ready = true;  // a token came: serve waiters
    it = throttled_.erase(it);
  }
  PruneKeys(now);
  triggers_.PruneEventIds(now);
  ReapWorkers(now, out);
  FireSchedules(now, out);
}

std::optional<TimeMs> Engine::NextWakeup() const {
  std::optional<TimeMs> next;
  if (const Live* l = timers_.top()) next = l->timer_at();
  for (const QueueState* q : throttled_) {
    const TimeMs at = q->settings.rate > 0 ? TokenAt(*q) : 0;
    if (!next || at < *next) next = at;
  }
  if (const auto due = schedules_.NextDue(); due && (!next || *due < *next)) next = due;
  if (auto at = pool_.NextDeadline(); at && (!next || *at < *next)) next = at;
  return next;
}

// ---------------------------------------------------------------- limits

TimeMs Engine::TokenAt(const QueueState& q) {
  return static_cast<TimeMs>(std::ceil(q.tat - ToleranceMs(q.settings)));
}

bool Engine::CanStart(QueueState* q, TimeMs now) {
  if (!WorkerPool::HasReady(*q)) return false;
  const QueueSettings& s = q->settings;
  if (s.concurrency > 0 &&
      q->counts[static_cast<std::size_t>(TaskState::kRunning)] >= s.concurrency) {
    return false;
  }
  if (s.rate > 0) {
    if (q->bucket_empty) {
      q->bucket_empty = false;
      q->tat = static_cast<double>(now) + IntervalMs(s) + ToleranceMs(s);
    }
    if (TokenAt(*q) > now) {
      throttled_.insert(q);
      return false;
    }
  }
  return true;
}

std::pair<std::string, std::string> Engine::WaitReasonOf(const Live* l) const {
  const QueueState& q = *l->queue;
  const QueueSettings& s = q.settings;
  const std::string queue = "queue '" + q.name + "'";
  switch (l->state()) {
    case TaskState::kScheduled:
      if (l->attempts > 0) {
        return {"backoff", "attempt " + std::to_string(l->attempts + 1) + " waits out its backoff until " +
                               FormatRfc3339(l->run_at)};
      }
      return {"scheduled", "due at " + FormatRfc3339(l->run_at)};
    case TaskState::kBlocked:
      return {"dependencies", "waiting for the tasks it depends on"};
    case TaskState::kReady:
      break;
    default:
      return {};
  }
  if (s.paused) return {"queue_paused", queue + " is paused"};
  if (const KeyGroup* g = l->group(); g && l->heap_pos == kNotInHeap) {
    const std::int32_t limit = KeyLimit(q, *g);
    // Counted up to a bound: a read must not walk a key with a million
    // tasks queued.
    constexpr std::int64_t kMaxCounted = 10'000;
    std::int64_t earlier = 0;
    for (auto it = g->members.begin(); it != g->members.end() && *it != l; ++it) {
      if (++earlier == kMaxCounted) break;
    }
    return {"concurrency_key",
            "key '" + *g->key + "' runs " + std::to_string(limit) + " at a time: " +
                std::to_string(g->running) + " running, " +
                (earlier == kMaxCounted ? "at least " : "") + std::to_string(earlier) +
                " unfinished before this one"};
  }
  const std::int64_t running = q.counts[static_cast<std::size_t>(TaskState::kRunning)];
  if (s.concurrency > 0 && running >= s.concurrency) {
    return {"queue_concurrency", queue + " runs " + std::to_string(s.concurrency) +
                                     " at a time: " + std::to_string(running) + " running"};
  }
  if (s.rate > 0 && throttled_.count(const_cast<QueueState*>(&q))) {
    return {"rate_limit", queue + " starts at most " + FormatDouble(s.rate) +
                              " per second; the next start is allowed at " +
                              FormatRfc3339(TokenAt(q))};
  }
  if (const Placement* p = WorkerPool::PlacementOf(l)) {
    if (std::string why = pool_.UnschedulableReason(q.ns, q.name, *p); !why.empty()) {
      return {"unschedulable", why};
    }
    if (!p->resources.empty() && !pool_.empty() && !pool_.AnyHasRoom(q.ns, q.name, *p)) {
      std::string detail = "no live worker that could run it has room free now";
      if (const WorkerPool::Worker* r = pool_.ReservedFor(FormatId(l->id))) {
        detail += "; worker " + r->info.spec.id + " is held for it";
      }
      return {"resources", detail};
    }
  }
  return {"worker", "ready: no worker has leased it yet"};
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
  const QueueSettings old = q.settings;
  q.settings = s;
  out->mutations.push_back(mutation::PutQueue{QueueRecord{ns, name, s}});
  if (old.rate != s.rate || old.burst != s.burst) {
    // A new bucket starts full (a restart, by contrast, starts it empty).
    q.tat = 0;
    q.bucket_empty = false;
    throttled_.erase(&q);
  }
  if (old.key_concurrency != s.key_concurrency) {
    for (auto& [key, g] : q.keys) RefreshKey(&q, &g, out);
  }
  // Resumed, or a limit raised: whoever waits may get work now.
  if (WorkerPool::HasReady(q)) out->made_ready = true;
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

std::optional<Task> Engine::Find(const std::string& ns, const std::string& id) const {
  const Live* l = FindLive(ns, id);
  if (!l) return std::nullopt;
  Task t = LiveTable::Expand(l);
  std::tie(t.wait_reason, t.wait_detail) = WaitReasonOf(l);
  return t;
}

bool Engine::IsLive(const std::string& ns, const std::string& id) const {
  return FindLive(ns, id) != nullptr;
}

}  // namespace dray
