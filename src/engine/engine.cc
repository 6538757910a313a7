#include "engine/engine.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>

#include "core/json_writer.h"
#include "core/time_format.h"
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
    if (!buffered_waits_.empty()) ScheduledRunEnded(t.id, in.now);
    if (!task_triggers_.empty()) QueueOutcomeTriggers(t);
  }
  auto snapshot = std::make_shared<const Task>(std::move(t));
  if (after) *after = *snapshot;
  const TaskState state = snapshot->state;
  Emit(std::move(snapshot), /*created=*/false, out);
  if (workflow) TaskOfWorkflowFinished(workflow, state, in.now, out);
  if (!draining_ && (!cascade_.empty() || !pending_fires_.empty())) {
    draining_ = true;
    while (!cascade_.empty() || !pending_fires_.empty()) {
      if (!cascade_.empty()) {
        Finished f = std::move(cascade_.front());
        cascade_.pop_front();
        Release(f, in.now, out);
        continue;
      }
      PendingFire p = std::move(pending_fires_.front());
      pending_fires_.pop_front();
      FireTrigger(p.trigger, std::move(p.payload), "dray.source", p.source, in.now, out);
    }
    draining_ = false;
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- dependencies

void Engine::Release(const Finished& f, TimeMs now, EngineOutput* out) {
  const std::string id = FormatId(f.id);
  for (const IdBytes& cid : f.children) {
    Live* c = live_.Find(cid);
    if (!c || c->state() != TaskState::kBlocked) continue;
    Deps& d = *c->deps();
    const bool same_workflow = !f.workflow.empty() && f.workflow == d.workflow_id;
    const std::string& name = same_workflow ? f.node : id;
    d.parents.push_back(ParentLive{f.id, name, f.state, f.result});
    d.pending--;
    if (f.state != TaskState::kSucceeded && d.policy == DepFailure::kCancel) {
      ApplyInput in{now};
      const std::string error = "dependency '" + name + "' " +
                                std::string(TaskStateName(f.state));
      in.error = error;
      (void)Step(c, EventInput{TaskEvent::kCancel}, in, out);
    } else if (d.pending <= 0) {
      (void)Step(c, EventInput{TaskEvent::kDepsMet}, ApplyInput{now}, out);
    }
  }
}

std::vector<ParentResult> Engine::ParentsOf(const Live* l) const {
  const Deps* d = l->deps();
  if (!d || d->parents.empty()) return {};
  std::map<IdBytes, const ParentLive*> by_id;
  for (const ParentLive& p : d->parents) by_id.emplace(p.id, &p);
  std::vector<ParentResult> out;
  out.reserve(d->parents.size());
  for (const IdBytes& dep : d->depends_on) {
    auto it = by_id.find(dep);
    if (it == by_id.end()) continue;
    const ParentLive& p = *it->second;
    out.push_back(ParentResult{p.name, FormatId(p.id), p.state, p.result ? *p.result : ""});
  }
  return out;
}

void Engine::EmitWorkflow(const WorkflowLive& w, EngineOutput* out) {
  if (out) out->mutations.push_back(mutation::PutWorkflow{std::make_shared<const Workflow>(w.record)});
}

void Engine::TaskOfWorkflowFinished(WorkflowLive* w, TaskState state, TimeMs now,
                                    EngineOutput* out) {
  w->unfinished--;
  if (state != TaskState::kSucceeded) w->failed_any = true;
  if (w->unfinished > 0) return;
  Workflow& r = w->record;
  r.state = r.cancel_requested ? WorkflowState::kCancelled
            : w->failed_any    ? WorkflowState::kFailed
                               : WorkflowState::kSucceeded;
  r.finished_at = r.updated_at = now;
  EmitWorkflow(*w, out);
  workflows_.erase(std::make_pair(r.ns, r.id));
}

// ---------------------------------------------------------------- recovery

void Engine::RestoreQueue(const QueueRecord& q) {
  QueueState& state = QueueFor(q.ns, q.name, nullptr);
  state.settings = q.settings;
  state.bucket_empty = true;  // a restart never grants a fresh burst
}

Status Engine::RestoreTask(Task&& task) {
  if (IsTerminal(task.state)) return InvalidArgument("task " + task.id + " is not live");
  if (!ParseId(task.id)) return DataLoss("live task '" + task.id + "' has an id Dray did not make");
  next_seq_ = std::max(next_seq_, task.seq + 1);
  next_token_ = std::max(next_token_, task.lease_token + 1);
  Live* l = Insert(std::move(task), nullptr);
  if (const Deps* d = l->deps(); d && !d->depends_on.empty()) restored_with_deps_.push_back(l);
  return Status::Ok();
}

void Engine::RestoreWorkflow(const Workflow& w, std::int64_t failed_tasks) {
  auto live = std::make_unique<WorkflowLive>();
  live->record = w;
  live->failed_any = failed_tasks > 0;
  workflows_[std::make_pair(w.ns, w.id)] = std::move(live);
}

void Engine::FinishRecovery(
    const std::function<StatusOr<Task>(const std::string&, const std::string&)>& stored,
    TimeMs now, EngineOutput* out) {
  // Links first: a task's dependencies may have been restored after it.
  std::vector<std::pair<IdBytes, bool>> check;  // (task, a dependency failed it)
  for (Live* l : restored_with_deps_) {
    Deps& d = *l->deps();
    d.pending = 0;
    d.parents.clear();
    bool cancel = false;
    for (const IdBytes& dep : d.depends_on) {
      if (Live* p = live_.Find(dep)) {
        d.pending++;
        Extra& px = p->MutableExtra();
        if (!px.deps) px.deps = std::make_unique<Deps>();
        px.deps->children.push_back(l->id);
        continue;
      }
      ParentLive parent{dep, FormatId(dep), TaskState::kSucceeded, nullptr};
      // A finished dependency purged since counts as met, with no result.
      auto row = stored(l->queue->ns, parent.name);
      if (row.ok()) {
        parent.state = row->state;
        parent.result = std::make_shared<const std::string>(row->result);
        if (!d.workflow_id.empty() && row->workflow == d.workflow_id) parent.name = row->node;
      }
      if (parent.state != TaskState::kSucceeded && d.policy == DepFailure::kCancel) cancel = true;
      d.parents.push_back(std::move(parent));
    }
    check.emplace_back(l->id, cancel);
  }
  restored_with_deps_.clear();
  // Then repairs (a consistent store needs none): by id, since a cancel
  // may end other tasks on the list.
  for (const auto& [id, cancel] : check) {
    Live* l = live_.Find(id);
    if (!l || l->state() != TaskState::kBlocked) continue;
    if (cancel) {
      ApplyInput in{now};
      in.error = "a dependency failed";
      (void)Step(l, EventInput{TaskEvent::kCancel}, in, out);
    } else if (l->deps()->pending == 0) {
      (void)Step(l, EventInput{TaskEvent::kDepsMet}, ApplyInput{now}, out);
    }
  }
  std::vector<WorkflowLive*> empty;
  for (auto& [key, w] : workflows_) {
    if (w->unfinished == 0) empty.push_back(w.get());
  }
  for (WorkflowLive* w : empty) {
    w->unfinished = 1;  // TaskOfWorkflowFinished counts one down and ends it
    TaskOfWorkflowFinished(w, w->failed_any ? TaskState::kFailed : TaskState::kSucceeded, now, out);
  }
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

// ---------------------------------------------------------------- workflows

namespace {

// Names a cycle among the tasks Kahn's algorithm could not order: walks
// from one of them to a dependency also left over until a task repeats.
std::string DescribeCycle(const WorkflowSpec& spec,
                          const std::vector<std::vector<std::size_t>>& parents,
                          const std::vector<bool>& ordered) {
  std::size_t v = 0;
  while (ordered[v]) ++v;
  std::vector<std::size_t> path;
  std::vector<std::size_t> seen_at(spec.tasks.size(), static_cast<std::size_t>(-1));
  while (seen_at[v] == static_cast<std::size_t>(-1)) {
    seen_at[v] = path.size();
    path.push_back(v);
    for (std::size_t p : parents[v]) {
      if (!ordered[p]) {
        v = p;
        break;
      }
    }
  }
  std::string text;
  for (std::size_t i = seen_at[v]; i < path.size(); ++i) {
    text += "'" + spec.tasks[path[i]].name + "' -> ";
  }
  return text + "'" + spec.tasks[v].name + "'";
}

}  // namespace

StatusOr<WorkflowOutcome> Engine::SubmitWorkflow(WorkflowSpec&& spec,
                                                 const std::map<std::string, Task>& finished,
                                                 TimeMs now, EngineOutput* out) {
  Tick(now, out);
  const std::size_t n = spec.tasks.size();
  if (n == 0) return InvalidArgument("a workflow needs at least one task");
  if (live_.size() + n > options_.max_live_tasks) {
    return ResourceExhausted("the server holds " + std::to_string(live_.size()) +
                             " live tasks; the limit is " +
                             std::to_string(options_.max_live_tasks));
  }
  std::unordered_map<std::string_view, std::size_t> index;
  index.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!index.emplace(spec.tasks[i].name, i).second) {
      return InvalidArgument("two tasks are named '" + spec.tasks[i].name + "'");
    }
  }
  // Edges. A dependency outside the workflow is a live task (its
  // dependents wait for it) or a finished one (met now, or fatal).
  struct External {
    IdBytes id;
    Live* live;
    const Task* row;
  };
  std::vector<std::vector<std::size_t>> parents(n), children(n);
  std::vector<std::vector<External>> external(n);
  for (std::size_t i = 0; i < n; ++i) {
    const WorkflowNodeSpec& node = spec.tasks[i];
    const std::string who = "task '" + node.name + "'";
    const DepFailure policy = node.on_failure.value_or(spec.on_failure);
    if (!node.depends_on.empty() && (node.task.run_at || node.task.delay_ms)) {
      return InvalidArgument(who + " has dependencies and a start time: a task with "
                             "dependencies starts when they are met");
    }
    if (!node.task.key.empty()) {
      return InvalidArgument(who + " has an idempotency key; tasks of a workflow cannot");
    }
    std::set<std::string_view> seen;
    for (const std::string& dep : node.depends_on) {
      if (!seen.insert(dep).second) continue;
      if (dep == node.name) return InvalidArgument(who + " depends on itself");
      if (auto it = index.find(dep); it != index.end()) {
        parents[i].push_back(it->second);
        children[it->second].push_back(i);
        continue;
      }
      auto bytes = ParseId(dep);
      Live* live = bytes ? FindLive(spec.ns, dep) : nullptr;
      auto row = bytes && !live ? finished.find(dep) : finished.end();
      if (!live && row == finished.end()) {
        return InvalidArgument(who + " depends on '" + dep +
                               "', which is neither a task of this workflow nor a task in "
                               "namespace '" + spec.ns + "'");
      }
      if (!live) {
        const Task& t = row->second;
        if (!IsTerminal(t.state)) {
          return FailedPrecondition("task " + dep + " changed meanwhile; try again");
        }
        if (t.state != TaskState::kSucceeded && policy == DepFailure::kCancel) {
          return FailedPrecondition(who + " depends on task " + dep + ", which is " +
                                    std::string(TaskStateName(t.state)) +
                                    ", so it would be cancelled at once (on_failure: cancel)");
        }
      }
      external[i].push_back(External{*bytes, live, live ? nullptr : &row->second});
    }
  }
  // Kahn's algorithm: parents before children, else a cycle.
  std::vector<std::size_t> order;
  order.reserve(n);
  std::vector<std::size_t> indegree(n);
  for (std::size_t i = 0; i < n; ++i) {
    indegree[i] = parents[i].size();
    if (indegree[i] == 0) order.push_back(i);
  }
  for (std::size_t k = 0; k < order.size(); ++k) {
    for (std::size_t c : children[order[k]]) {
      if (--indegree[c] == 0) order.push_back(c);
    }
  }
  if (order.size() < n) {
    std::vector<bool> ordered(n, false);
    for (std::size_t i : order) ordered[i] = true;
    return InvalidArgument("the tasks form a cycle: " + DescribeCycle(spec, parents, ordered));
  }

  auto owned = std::make_unique<WorkflowLive>();
  WorkflowLive* w = owned.get();
  Workflow& r = w->record;
  r.id = ids_.Next(now);
  r.ns = spec.ns;
  r.name = std::move(spec.name);
  r.on_failure = spec.on_failure;
  r.tasks = static_cast<std::int32_t>(n);
  r.created_at = r.updated_at = now;
  workflows_[std::make_pair(r.ns, r.id)] = std::move(owned);
  EmitWorkflow(*w, out);  // the workflow's row before its tasks'

  std::vector<Live*> made(n, nullptr);
  for (std::size_t i : order) {
    WorkflowNodeSpec& node = spec.tasks[i];
    node.task.ns = spec.ns;
    Task t = MakeTask(std::move(node.task), QueueFor(spec.ns, node.task.queue, out), now);
    t.workflow = r.id;
    t.node = node.name;
    t.on_dep_failure = node.on_failure.value_or(spec.on_failure);
    std::int32_t pending = 0;
    std::vector<ParentLive> met;
    for (std::size_t p : parents[i]) {
      t.depends_on.push_back(FormatId(made[p]->id));
      ++pending;
    }
    for (const External& e : external[i]) {
      t.depends_on.push_back(FormatId(e.id));
      if (e.live) {
        ++pending;
      } else {
        met.push_back(ParentLive{e.id, FormatId(e.id), e.row->state,
                                 std::make_shared<const std::string>(e.row->result)});
      }
    }
    t.state = InitialState(pending > 0, t.run_at, now);
    Live* l = Insert(std::move(t), out);
    made[i] = l;
    Deps& d = *l->deps();
    d.pending = pending;
    d.parents = std::move(met);
    for (std::size_t p : parents[i]) made[p]->deps()->children.push_back(l->id);
    for (const External& e : external[i]) {
      if (!e.live) continue;
      Extra& px = e.live->MutableExtra();
      if (!px.deps) px.deps = std::make_unique<Deps>();
      px.deps->children.push_back(l->id);
    }
  }
  WorkflowOutcome outcome;
  outcome.workflow = r;
  outcome.tasks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    outcome.tasks.emplace_back(spec.tasks[i].name, FormatId(made[i]->id));
  }
  return outcome;
}

StatusOr<Workflow> Engine::CancelWorkflow(const std::string& ns, const std::string& id, TimeMs now,
                                          EngineOutput* out) {
  Tick(now, out);
  auto it = workflows_.find(std::make_pair(ns, id));
  if (it == workflows_.end()) return NotFound("workflow " + id + " is not running");
  WorkflowLive* w = it->second.get();
  w->record.cancel_requested = true;
  w->record.updated_at = now;
  Workflow result = w->record;
  EmitWorkflow(*w, out);
  const std::vector<IdBytes> tasks = w->tasks;  // w may end while they are cancelled
  for (const IdBytes& tid : tasks) {
    Live* l = live_.Find(tid);
    if (!l) continue;
    ApplyInput in{now};
    in.error = "workflow cancelled";
    (void)Step(l, EventInput{TaskEvent::kCancel}, in, out);
  }
  if (!workflows_.count(std::make_pair(ns, id))) {
    result.state = WorkflowState::kCancelled;
    result.finished_at = now;
  }
  return result;
}

std::optional<WorkflowStatus> Engine::FindWorkflow(const std::string& ns,
                                                   const std::string& id) const {
  auto it = workflows_.find(std::make_pair(ns, id));
  if (it == workflows_.end()) return std::nullopt;
  return WorkflowStatus{it->second->record, it->second->unfinished};
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
  PruneEventIds(now);
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
  if (const ScheduleLive* s = schedule_heap_.top(); s && (!next || s->due < *next)) next = s->due;
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
