// Placement (docs/placement.md): which registered worker may run a task
// with resources, label requirements, preferences, an affinity key or a
// broadcast pin; the capacity each running task holds; reservations for
// large tasks and the backfill around them; why a task cannot run.
#include <algorithm>
#include <limits>

#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {

namespace {

// heap_pos of a ready task kept in its queue's `placed` or `parked` set.
constexpr HeapPos kPlaced = kNotInHeap - 1;
constexpr HeapPos kParked = kNotInHeap - 2;
// Per queue and lease: placed tasks the leasing worker could run but has no
// room for now, and tasks it could not run at all (labels, size, bound
// elsewhere), that a lease looks at before it gives up on the rest.
constexpr int kPlacementScan = 128;
constexpr int kPlacementSkips = 8192;
// Waiting workers compared per placed task.
constexpr int kWaitersCompared = 64;
constexpr TimeMs kNever = std::numeric_limits<TimeMs>::max();

std::int64_t Get(const std::map<std::string, std::int64_t>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

bool ServesQueue(const WorkerSpec& spec, const std::string& queue) {
  return spec.queues.empty() ||
         std::find(spec.queues.begin(), spec.queues.end(), queue) != spec.queues.end();
}

bool LabelsMatch(const WorkerSpec& spec, const Placement& p) {
  for (const LabelSelector& s : p.require) {
    if (!s.Matches(spec.labels)) return false;
  }
  return true;
}

bool FitsTotal(const WorkerSpec& spec, const Placement& p) {
  for (const auto& [name, amount] : p.resources) {
    if (Get(spec.capacity, name) < amount) return false;
  }
  return true;
}

// A task an unregistered worker must not take: it asks for what only a
// registered worker says it has.
bool NeedsRegistered(const Placement& p) {
  return !p.resources.empty() || !p.require.empty() || !p.worker.empty();
}

std::string Amounts(const std::map<std::string, std::int64_t>& m) {
  std::string out;
  for (const auto& [k, v] : m) {
    if (!out.empty()) out += ", ";
    out += k + "=" + std::to_string(v);
  }
  return out;
}

std::string DescribeSelector(const LabelSelector& s) {
  std::string values;
  for (const std::string& v : s.values) values += (values.empty() ? "" : ",") + v;
  switch (s.op) {
    case SelectorOp::kEquals: return s.key + "=" + values;
    case SelectorOp::kIn: return s.key + " in (" + values + ")";
    case SelectorOp::kNotIn: return s.key + " not in (" + values + ")";
    case SelectorOp::kExists: return s.key + " set";
    case SelectorOp::kNotExists: return s.key + " not set";
  }
  return s.key;
}

}  // namespace

const Placement* Engine::PlacementOf(const Live* l) {
  return l->extra ? l->extra->placement.get() : nullptr;
}

void Engine::PushReady(QueueState* q, Live* l) {
  if (!PlacementOf(l)) {
    q->ready.push(l);
    return;
  }
  q->placed.insert(l);
  l->heap_pos = kPlaced;
  placed_ready_++;
}

void Engine::EraseReady(QueueState* q, Live* l) {
  if (l->heap_pos == kParked) {
    q->parked.erase(l);
    l->heap_pos = kNotInHeap;
    return;
  }
  if (l->heap_pos != kPlaced) {
    q->ready.erase(l);
    return;
  }
  q->placed.erase(l);
  l->heap_pos = kNotInHeap;
  placed_ready_--;
}

bool Engine::HasReady(const QueueState& q) const { return !q.ready.empty() || !q.placed.empty(); }

bool Engine::Admits(const WorkerLive& w, const Placement& p) {
  return LabelsMatch(w.info.spec, p) && FitsTotal(w.info.spec, p);
}

bool Engine::FitsFree(const WorkerLive& w, const Placement& p, const Placement* keep) {
  for (const auto& [name, amount] : p.resources) {
    const std::int64_t held = Get(w.used, name) + (keep ? Get(keep->resources, name) : 0);
    if (Get(w.info.spec.capacity, name) - held < amount) return false;
  }
  return true;
}

const Engine::WorkerLive* Engine::TargetOf(const Live* c, const Placement& p) const {
  const std::string& ns = c->queue->ns;
  const WorkerLive* target = nullptr;
  if (!p.worker.empty()) {
    target = WorkerOf(ns, p.worker);
  } else if (!p.affinity_key.empty()) {
    if (auto it = affinity_.find({ns, p.affinity_key}); it != affinity_.end()) {
      target = WorkerOf(ns, it->second);
    }
  }
  // A target that could not run it (its labels or size changed) binds nothing.
  if (target && (!Admits(*target, p) || !ServesQueue(target->info.spec, c->queue->name))) {
    return nullptr;
  }
  return target;
}

const Live* Engine::ReservationOf(WorkerLive* w) {
  if (w->reserved_for.empty()) return nullptr;
  const Live* r = FindLive(w->info.spec.ns, w->reserved_for);
  if (r && r->state() == TaskState::kReady && r->heap_pos == kPlaced) return r;
  DropReservation(w->reserved_for);  // it started elsewhere, or left
  return nullptr;
}

void Engine::Reserve(WorkerLive* w, const Live* c) {
  w->reserved_for = FormatId(c->id);
  reservations_[w->reserved_for] = w;
}

void Engine::DropReservation(const std::string& task_id) {
  auto it = reservations_.find(task_id);
  if (it == reservations_.end()) return;
  it->second->reserved_for.clear();
  reservations_.erase(it);
}

TimeMs Engine::ShadowTime(const WorkerLive& w, const Placement& r, TimeMs now) const {
  // What each of its running tasks gives back, and by when at the latest.
  std::vector<std::pair<TimeMs, const std::map<std::string, std::int64_t>*>> ends;
  for (const auto& [id, holding] : w.running) {
    const Live* l = FindLive(w.info.spec.ns, id);
    if (!l || l->timeout_ms() <= 0 || !l->run || l->run->history.empty()) continue;
    ends.emplace_back(l->run->history.back().started_at + l->timeout_ms(), &holding.resources);
  }
  std::sort(ends.begin(), ends.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::map<std::string, std::int64_t> freed;
  const auto fits = [&] {
    for (const auto& [name, amount] : r.resources) {
      if (Get(w.info.spec.capacity, name) - Get(w.used, name) + Get(freed, name) < amount) {
        return false;
      }
    }
    return true;
  };
  if (fits()) return now;
  for (const auto& [at, resources] : ends) {
    for (const auto& [name, amount] : *resources) freed[name] += amount;
    if (fits()) return at;
  }
  return kNever;
}

double Engine::Score(const WorkerLive& w, const Live* c, const Placement& p) const {
  double pref = 0;
  for (const LabelPreference& lp : p.prefer) {
    if (lp.selector.Matches(w.info.spec.labels)) pref += lp.weight;
  }
  // How full it is, over the resources it has (tasks held when it has none).
  double fill = 0;
  int dims = 0;
  for (const auto& [name, cap] : w.info.spec.capacity) {
    if (cap <= 0) continue;
    fill += static_cast<double>(Get(w.used, name)) / static_cast<double>(cap);
    dims++;
  }
  fill = dims ? fill / dims : static_cast<double>(w.running.size());
  const bool spread = c->queue->settings.placement == PlacementPolicy::kSpread;
  // Preferences first (each weight outranks any fill), then the policy.
  return pref * 4.0 + (spread ? -fill : fill) / (dims ? 1.0 : 1e6);
}

bool Engine::BetterWaiter(const WorkerLive* w, const Live* c, const Placement& p) const {
  if (waiters_.size() < 2) return false;
  const std::string& ns = c->queue->ns;
  const double mine = Score(*w, c, p);
  int compared = 0;
  for (const auto& [id, waiter] : waiters_) {
    if (waiter.req.ns != ns || waiter.req.worker == w->info.spec.id) continue;
    if (std::find(waiter.req.queues.begin(), waiter.req.queues.end(), c->queue->name) ==
        waiter.req.queues.end()) {
      continue;
    }
    const WorkerLive* x = WorkerOf(ns, waiter.req.worker);
    if (!x || !Admits(*x, p)) continue;
    const Placement* keep = nullptr;
    if (!x->reserved_for.empty() && x->reserved_for != FormatId(c->id)) {
      if (const Live* r = FindLive(ns, x->reserved_for)) keep = PlacementOf(r);
    }
    if (!FitsFree(*x, p, keep)) continue;
    if (Score(*x, c, p) > mine) return true;
    if (++compared == kWaitersCompared) break;
  }
  return false;
}

Engine::Verdict Engine::MayTake(WorkerLive* w, const Live*& reserved, Live* c, TimeMs now,
                                EngineOutput* out) {
  const Placement& p = *PlacementOf(c);
  const WorkerLive* target = TargetOf(c, p);
  if (!w) return !target && !NeedsRegistered(p) ? Verdict::kTake : Verdict::kNotHere;
  if (target && target != w) return Verdict::kNotHere;
  if (!Admits(*w, p)) return Verdict::kNotHere;
  const Live* r = reserved == c ? nullptr : reserved;
  const Placement* keep = r ? PlacementOf(r) : nullptr;
  bool fits = FitsFree(*w, p, keep);
  if (!fits && keep && c->timeout_ms() > 0 && FitsFree(*w, p, nullptr)) {
    // Backfill: it ends (at the latest) before the reserved task could start.
    const TimeMs shadow = ShadowTime(*w, *keep, now);
    fits = shadow != kNever && now + c->timeout_ms() <= shadow;
  }
  if (!fits) {
    // The first task that cannot fit here now but could once the running
    // ones end holds the worker for itself, so that smaller tasks behind it
    // do not starve it.
    if (!reserved && !reservations_.count(FormatId(c->id))) {
      Reserve(w, c);
      reserved = c;
    }
    return Verdict::kWait;
  }
  // Bound to this worker (broadcast copy, affinity key): no one else may
  // take it, so no one else is compared.
  if (!target && BetterWaiter(w, c, p)) {
    out->made_ready = true;  // that waiter is served once this call is done
    return Verdict::kNotHere;
  }
  return Verdict::kTake;
}

Live* Engine::PickFor(QueueState* q, WorkerLive* w, TimeMs now, EngineOutput* out) {
  Live* u = q->ready.top();
  if (q->placed.empty()) return u;
  Live* pick = nullptr;
  int waits = kPlacementScan, skips = kPlacementSkips;
  std::vector<Live*> park;
  const Live* reserved = w ? ReservationOf(w) : nullptr;
  for (Live* c : q->placed) {
    if (u && ReadyLess()(u, c)) break;  // the plain task comes first
    const Verdict v = MayTake(w, reserved, c, now, out);
    if (v == Verdict::kTake) {
      pick = c;
      break;
    }
    if (v == Verdict::kWait) {
      if (--waits == 0) break;
      continue;
    }
    // Not for this worker. Once per change of the live workers, ask whether
    // it is for any: a task none could run leaves the scan until one could
    // (and does not count: each task is parked at most once per change).
    Extra& x = *c->extra;
    if (x.checked_epoch != workers_epoch_) {
      x.checked_epoch = workers_epoch_;
      if (!AnyAdmits(c, *x.placement)) {
        park.push_back(c);
        continue;
      }
    }
    if (--skips == 0) break;
  }
  for (Live* c : park) Park(q, c);
  return pick ? pick : u;
}

bool Engine::AnyAdmits(const Live* c, const Placement& p) const {
  if (!NeedsRegistered(p)) return true;
  const std::string& ns = c->queue->ns;
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    const WorkerLive& w = *it->second;
    if (ServesQueue(w.info.spec, c->queue->name) && Admits(w, p)) return true;
  }
  return false;
}

bool Engine::AnyHasRoom(const Live* c, const Placement& p) const {
  const std::string& ns = c->queue->ns;
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    const WorkerLive& w = *it->second;
    if (ServesQueue(w.info.spec, c->queue->name) && Admits(w, p) && FitsFree(w, p, nullptr)) {
      return true;
    }
  }
  return false;
}

void Engine::Park(QueueState* q, Live* c) {
  q->placed.erase(c);
  placed_ready_--;
  q->parked.insert(c);
  c->heap_pos = kParked;
  DropReservation(FormatId(c->id));
}

void Engine::Unpark(const WorkerLive& w, EngineOutput* out) {
  const std::string& ns = w.info.spec.ns;
  for (auto it = queues_.lower_bound({ns, ""}); it != queues_.end() && it->first.first == ns;
       ++it) {
    QueueState* q = it->second.get();
    if (q->parked.empty() || !ServesQueue(w.info.spec, q->name)) continue;
    for (auto p = q->parked.begin(); p != q->parked.end();) {
      Live* c = *p;
      if (!Admits(w, *PlacementOf(c))) {
        ++p;
        continue;
      }
      p = q->parked.erase(p);
      c->heap_pos = kNotInHeap;
      PushReady(q, c);
      out->made_ready = true;
    }
  }
}

void Engine::Hold(WorkerLive* w, const Live* l, const std::string& task_id) {
  if (w->running.count(task_id)) return;
  WorkerLive::Holding& h = w->running[task_id];
  DropReservation(task_id);
  const Placement* p = l ? PlacementOf(l) : nullptr;
  if (!p) return;
  h.resources = p->resources;
  for (const auto& [name, amount] : h.resources) w->used[name] += amount;
  std::int64_t gpus = Get(h.resources, "gpu");
  for (const std::string& d : w->info.spec.gpu_devices) {
    if (gpus <= 0) break;
    if (w->gpus_in_use.insert(d).second) {
      h.gpus.push_back(d);
      gpus--;
    }
  }
  if (!p->affinity_key.empty()) {
    auto& bound = affinity_[{w->info.spec.ns, p->affinity_key}];
    if (bound != w->info.spec.id) {
      if (WorkerLive* old = WorkerOf(w->info.spec.ns, bound)) old->affinity_keys.erase(p->affinity_key);
      bound = w->info.spec.id;
      w->affinity_keys.insert(p->affinity_key);
    }
  }
}

void Engine::Unhold(WorkerLive* w, const std::string& task_id) {
  auto it = w->running.find(task_id);
  if (it == w->running.end()) return;
  for (const auto& [name, amount] : it->second.resources) {
    if ((w->used[name] -= amount) == 0) w->used.erase(name);
  }
  for (const std::string& d : it->second.gpus) w->gpus_in_use.erase(d);
  w->running.erase(it);
}

void Engine::ForgetWorker(WorkerLive* w) {
  if (!w->reserved_for.empty()) DropReservation(w->reserved_for);
  for (const std::string& key : w->affinity_keys) {
    auto it = affinity_.find({w->info.spec.ns, key});
    if (it != affinity_.end() && it->second == w->info.spec.id) affinity_.erase(it);
  }
  w->affinity_keys.clear();
}

std::string Engine::UnschedulableReason(const Live* l, const Placement& p) const {
  if (!NeedsRegistered(p)) return {};
  const std::string& ns = l->queue->ns;
  const std::string& queue = l->queue->name;
  std::size_t live = 0, labelled = 0;
  // Of those that match its labels, the one that comes closest (the most
  // of what it asks for, each resource capped at the request), to name.
  const WorkerLive* closest = nullptr;
  double closest_share = -1;
  std::size_t failed_selector = p.require.size();
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    const WorkerLive& w = *it->second;
    if (!ServesQueue(w.info.spec, queue)) continue;
    live++;
    // A broadcast copy is for its own worker while that one lives.
    if (!p.worker.empty() && WorkerOf(ns, p.worker) && w.info.spec.id != p.worker) continue;
    bool match = true;
    for (std::size_t i = 0; i < p.require.size(); ++i) {
      if (!p.require[i].Matches(w.info.spec.labels)) {
        failed_selector = std::min(failed_selector, i);
        match = false;
        break;
      }
    }
    if (!match) continue;
    labelled++;
    if (FitsTotal(w.info.spec, p)) return {};
    double share = 0;
    for (const auto& [name, amount] : p.resources) {
      share += std::min(1.0, static_cast<double>(Get(w.info.spec.capacity, name)) /
                                 static_cast<double>(amount));
    }
    if (share > closest_share) {
      closest = &w;
      closest_share = share;
    }
  }
  if (live == 0) {
    return "no live registered worker serves queue '" + queue + "' in namespace '" + ns + "'";
  }
  if (labelled == 0) {
    if (!p.worker.empty()) return "it was made for worker " + p.worker + ", which could not run it";
    return "no live worker has labels matching " + DescribeSelector(p.require[failed_selector]);
  }
  return "it requests " + Amounts(p.resources) + "; no live worker matching its labels has " +
         "that much in all (worker " + closest->info.spec.id + " has " +
         (closest->info.spec.capacity.empty() ? std::string("no resources")
                                               : Amounts(closest->info.spec.capacity)) +
         ")";
}

StatusOr<std::vector<BroadcastCopy>> Engine::SubmitBroadcast(TaskSpec&& spec, TimeMs now,
                                                             EngineOutput* out) {
  Tick(now, out);
  const std::string base_key = spec.key;
  if (!base_key.empty()) {
    // The copies of one broadcast carry the key with "#<shard>" after it.
    std::vector<BroadcastCopy> earlier;
    for (std::int32_t i = 0;; ++i) {
      auto it = keys_.find(KeyOf(spec.ns, base_key + "#" + std::to_string(i)));
      if (it == keys_.end() || it->second.created_at + options_.idempotency_window_ms <= now) break;
      BroadcastCopy copy{it->second.id, {}, i, false};
      if (const Live* l = FindLive(spec.ns, copy.id); l && PlacementOf(l)) {
        copy.worker = PlacementOf(l)->worker;
      }
      earlier.push_back(std::move(copy));
    }
    if (!earlier.empty()) return earlier;
  }
  std::vector<const WorkerLive*> targets;
  for (auto it = workers_.lower_bound({spec.ns, ""});
       it != workers_.end() && it->first.first == spec.ns; ++it) {
    const WorkerLive& w = *it->second;
    if (ServesQueue(w.info.spec, spec.queue) && Admits(w, spec.placement)) targets.push_back(&w);
  }
  if (targets.empty()) {
    return FailedPrecondition("no live registered worker serves queue '" + spec.queue +
                              "' and could run the task: a broadcast has no one to go to");
  }
  std::vector<TaskSpec> copies;
  const auto total = static_cast<std::int32_t>(targets.size());
  for (std::int32_t i = 0; i < total; ++i) {
    TaskSpec copy = spec;
    copy.placement.worker = targets[static_cast<std::size_t>(i)]->info.spec.id;
    copy.placement.shard_index = i;
    copy.placement.shard_total = total;
    if (!base_key.empty()) copy.key = base_key + "#" + std::to_string(i);
    copies.push_back(std::move(copy));
  }
  auto submitted = Submit(std::move(copies), now, out);
  if (!submitted.ok()) return submitted.status();
  std::vector<BroadcastCopy> result;
  for (std::int32_t i = 0; i < total; ++i) {
    const SubmitOutcome& o = (*submitted)[static_cast<std::size_t>(i)];
    result.push_back(BroadcastCopy{o.id, targets[static_cast<std::size_t>(i)]->info.spec.id, i,
                                   o.created});
  }
  return result;
}

}  // namespace dray
