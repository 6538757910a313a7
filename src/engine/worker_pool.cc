#include "engine/worker_pool.h"

#include <algorithm>

#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {

namespace {

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

WorkerPool::WorkerPool(const LiveTable& live, std::int64_t grace_ms)
    : live_(live), grace_ms_(grace_ms) {}

WorkerPool::~WorkerPool() = default;

Live* WorkerPool::FindLive(const std::string& ns, const std::string& id) const {
  auto bytes = ParseId(id);
  if (!bytes) return nullptr;
  Live* l = live_.Find(*bytes);
  if (!l || l->queue->ns != ns) return nullptr;
  return l;
}

// ---------------------------------------------------------------- registry

WorkerPool::Worker* WorkerPool::Find(const std::string& ns, const std::string& id) const {
  if (workers_.empty() || id.empty()) return nullptr;
  auto it = workers_.find({ns, id});
  return it == workers_.end() ? nullptr : it->second.get();
}

void WorkerPool::Saw(Worker* w, TimeMs now) {
  if (!w) return;
  w->info.last_seen = std::max(w->info.last_seen, now);
  w->deadline = w->info.last_seen + grace_ms_;
  deadlines_.update(w);
}

WorkerPool::Worker& WorkerPool::Register(WorkerSpec&& spec, TimeMs now) {
  auto& slot = workers_[{spec.ns, spec.id}];
  if (!slot) {
    slot = std::make_unique<Worker>();
    slot->info.registered_at = now;
    // Tasks it already holds (leased before a server restart) become its
    // own again at their next heartbeat (SawHolder), not by a scan here.
  }
  slot->info.spec = std::move(spec);
  Saw(slot.get(), now);
  epoch_++;
  return *slot;
}

std::unique_ptr<WorkerPool::Worker> WorkerPool::Remove(
    std::map<std::pair<std::string, std::string>, std::unique_ptr<Worker>>::iterator it) {
  std::unique_ptr<Worker> gone = std::move(it->second);
  workers_.erase(it);
  deadlines_.erase(gone.get());
  epoch_++;
  Forget(gone.get());
  return gone;
}

std::unique_ptr<WorkerPool::Worker> WorkerPool::Deregister(const std::string& ns,
                                                           const std::string& id) {
  auto it = workers_.find({ns, id});
  if (it == workers_.end()) return nullptr;
  return Remove(it);
}

std::unique_ptr<WorkerPool::Worker> WorkerPool::TakeDead(TimeMs now) {
  Worker* w = deadlines_.top();
  if (!w || w->deadline > now) return nullptr;
  deadlines_.pop();
  return Remove(workers_.find({w->info.spec.ns, w->info.spec.id}));
}

std::optional<TimeMs> WorkerPool::NextDeadline() const {
  if (const Worker* w = deadlines_.top()) return w->deadline;
  return std::nullopt;
}

void WorkerPool::SawHolder(const std::string& ns, const std::string& task_id, TimeMs now) {
  if (workers_.empty()) return;
  const Live* l = FindLive(ns, task_id);
  if (!l || !l->run || l->state() != TaskState::kRunning) return;
  Worker* w = Find(ns, l->run->worker);
  if (!w) return;
  Saw(w, now);
  Hold(w, l, task_id);  // adopts a task leased before it registered
}

WorkerInfo WorkerPool::View(const Worker& w) {
  WorkerInfo info = w.info;
  for (const auto& entry : w.running) info.running.push_back(entry.first);
  info.in_use = w.used;
  info.gpu_devices_in_use.assign(w.gpus_in_use.begin(), w.gpus_in_use.end());
  info.reserved_for = w.reserved_for;
  return info;
}

std::vector<WorkerInfo> WorkerPool::List(const std::string& ns) const {
  std::vector<WorkerInfo> out;
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    out.push_back(View(*it->second));
  }
  return out;
}

std::vector<std::string> WorkerPool::BroadcastTargets(const std::string& ns,
                                                      const std::string& queue,
                                                      const Placement& p) const {
  std::vector<std::string> targets;
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    const Worker& w = *it->second;
    if (ServesQueue(w.info.spec, queue) && Admits(w, p)) targets.push_back(w.info.spec.id);
  }
  return targets;
}

void WorkerPool::Forget(Worker* w) {
  if (!w->reserved_for.empty()) DropReservation(w->reserved_for);
  for (const std::string& key : w->affinity_keys) {
    auto it = affinity_.find({w->info.spec.ns, key});
    if (it != affinity_.end() && it->second == w->info.spec.id) affinity_.erase(it);
  }
  w->affinity_keys.clear();
}

// ---------------------------------------------------------------- holdings

void WorkerPool::TrackRunning(const Live* l, const std::string& ns, const std::string& old_worker,
                              const std::string& new_worker, const std::string& task_id) {
  if (old_worker == new_worker) return;
  if (Worker* w = Find(ns, old_worker)) Unhold(w, task_id);
  if (Worker* w = Find(ns, new_worker)) Hold(w, l, task_id);
}

void WorkerPool::Hold(Worker* w, const Live* l, const std::string& task_id) {
  if (w->running.count(task_id)) return;
  Worker::Holding& h = w->running[task_id];
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
      if (Worker* old = Find(w->info.spec.ns, bound)) old->affinity_keys.erase(p->affinity_key);
      bound = w->info.spec.id;
      w->affinity_keys.insert(p->affinity_key);
    }
  }
}

void WorkerPool::Unhold(Worker* w, const std::string& task_id) {
  auto it = w->running.find(task_id);
  if (it == w->running.end()) return;
  for (const auto& [name, amount] : it->second.resources) {
    if ((w->used[name] -= amount) == 0) w->used.erase(name);
  }
  for (const std::string& d : it->second.gpus) w->gpus_in_use.erase(d);
  w->running.erase(it);
}

// ---------------------------------------------------------------- ready sets

void WorkerPool::PushReady(QueueState* q, Live* l) {
  if (!PlacementOf(l)) {
    q->ready.push(l);
    return;
  }
  q->placed.insert(l);
  l->heap_pos = kPlaced;
  placed_ready_++;
}

void WorkerPool::EraseReady(QueueState* q, Live* l) {
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

bool WorkerPool::HasReady(const QueueState& q) { return !q.ready.empty() || !q.placed.empty(); }

void WorkerPool::Park(QueueState* q, Live* c) {
  q->placed.erase(c);
  placed_ready_--;
  q->parked.insert(c);
  c->heap_pos = kParked;
  DropReservation(FormatId(c->id));
}

bool WorkerPool::Unpark(const Worker& w, QueueState* q) {
  if (q->parked.empty() || !ServesQueue(w.info.spec, q->name)) return false;
  bool moved = false;
  for (auto p = q->parked.begin(); p != q->parked.end();) {
    Live* c = *p;
    if (!Admits(w, *PlacementOf(c))) {
      ++p;
      continue;
    }
    p = q->parked.erase(p);
    c->heap_pos = kNotInHeap;
    PushReady(q, c);
    moved = true;
  }
  return moved;
}

// ---------------------------------------------------------------- decisions

bool WorkerPool::Admits(const Worker& w, const Placement& p) {
  return LabelsMatch(w.info.spec, p) && FitsTotal(w.info.spec, p);
}

bool WorkerPool::FitsFree(const Worker& w, const Placement& p, const Placement* keep) {
  for (const auto& [name, amount] : p.resources) {
    const std::int64_t held = Get(w.used, name) + (keep ? Get(keep->resources, name) : 0);
    if (Get(w.info.spec.capacity, name) - held < amount) return false;
  }
  return true;
}

double WorkerPool::Score(const Worker& w, const Placement& p, PlacementPolicy policy) {
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
  const bool spread = policy == PlacementPolicy::kSpread;
  // Preferences first (each weight outranks any fill), then the policy.
  return pref * 4.0 + (spread ? -fill : fill) / (dims ? 1.0 : 1e6);
}

TimeMs WorkerPool::ShadowTime(const Worker& w, const Placement& r, TimeMs now) const {
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

const WorkerPool::Worker* WorkerPool::TargetOf(const Live* c, const Placement& p) const {
  const std::string& ns = c->queue->ns;
  const Worker* target = nullptr;
  if (!p.worker.empty()) {
    target = Find(ns, p.worker);
  } else if (!p.affinity_key.empty()) {
    if (auto it = affinity_.find({ns, p.affinity_key}); it != affinity_.end()) {
      target = Find(ns, it->second);
    }
  }
  // A target that could not run it (its labels or size changed) binds nothing.
  if (target && (!Admits(*target, p) || !ServesQueue(target->info.spec, c->queue->name))) {
    return nullptr;
  }
  return target;
}

// ---------------------------------------------------------------- reservations

const Live* WorkerPool::ReservationOf(Worker* w) {
  if (w->reserved_for.empty()) return nullptr;
  const Live* r = FindLive(w->info.spec.ns, w->reserved_for);
  if (r && r->state() == TaskState::kReady && r->heap_pos == kPlaced) return r;
  DropReservation(w->reserved_for);  // it started elsewhere, or left
  return nullptr;
}

void WorkerPool::Reserve(Worker* w, const Live* c) {
  w->reserved_for = FormatId(c->id);
  reservations_[w->reserved_for] = w;
}

void WorkerPool::DropReservation(const std::string& task_id) {
  auto it = reservations_.find(task_id);
  if (it == reservations_.end()) return;
  it->second->reserved_for.clear();
  reservations_.erase(it);
}

const WorkerPool::Worker* WorkerPool::ReservedFor(const std::string& task_id) const {
  auto it = reservations_.find(task_id);
  return it == reservations_.end() ? nullptr : it->second;
}

// ---------------------------------------------------------------- leasing

bool WorkerPool::BetterWaiter(const Worker* w, const Live* c, const Placement& p,
                              const Waiters& waiters) const {
  if (waiters.size() < 2) return false;
  const std::string& ns = c->queue->ns;
  const PlacementPolicy policy = c->queue->settings.placement;
  const double mine = Score(*w, p, policy);
  int compared = 0;
  for (const auto& [id, req] : waiters) {
    if (req.ns != ns || req.worker == w->info.spec.id) continue;
    if (std::find(req.queues.begin(), req.queues.end(), c->queue->name) == req.queues.end()) {
      continue;
    }
    const Worker* x = Find(ns, req.worker);
    if (!x || !Admits(*x, p)) continue;
    const Placement* keep = nullptr;
    if (!x->reserved_for.empty() && x->reserved_for != FormatId(c->id)) {
      if (const Live* r = FindLive(ns, x->reserved_for)) keep = PlacementOf(r);
    }
    if (!FitsFree(*x, p, keep)) continue;
    if (Score(*x, p, policy) > mine) return true;
    if (++compared == kWaitersCompared) break;
  }
  return false;
}

WorkerPool::Verdict WorkerPool::MayTake(Worker* w, const Live*& reserved, Live* c,
                                        const Waiters& waiters, TimeMs now, bool* made_ready) {
  const Placement& p = *PlacementOf(c);
  const Worker* target = TargetOf(c, p);
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
  if (!target && BetterWaiter(w, c, p, waiters)) {
    *made_ready = true;  // that waiter is served once this call is done
    return Verdict::kNotHere;
  }
  return Verdict::kTake;
}

Live* WorkerPool::PickFor(QueueState* q, Worker* w, const Waiters& waiters, TimeMs now,
                          bool* made_ready) {
  Live* u = q->ready.top();
  if (q->placed.empty()) return u;
  Live* pick = nullptr;
  int waits = kPlacementScan, skips = kPlacementSkips;
  std::vector<Live*> park;
  const Live* reserved = w ? ReservationOf(w) : nullptr;
  for (Live* c : q->placed) {
    if (u && ReadyLess()(u, c)) break;  // the plain task comes first
    const Verdict v = MayTake(w, reserved, c, waiters, now, made_ready);
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
    if (x.checked_epoch != epoch_) {
      x.checked_epoch = epoch_;
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

bool WorkerPool::AnyAdmits(const Live* c, const Placement& p) const {
  if (!NeedsRegistered(p)) return true;
  const std::string& ns = c->queue->ns;
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    const Worker& w = *it->second;
    if (ServesQueue(w.info.spec, c->queue->name) && Admits(w, p)) return true;
  }
  return false;
}

// ---------------------------------------------------------------- reads

bool WorkerPool::AnyHasRoom(const std::string& ns, const std::string& queue,
                            const Placement& p) const {
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    const Worker& w = *it->second;
    if (ServesQueue(w.info.spec, queue) && Admits(w, p) && FitsFree(w, p, nullptr)) return true;
  }
  return false;
}

std::string WorkerPool::UnschedulableReason(const std::string& ns, const std::string& queue,
                                            const Placement& p) const {
  if (!NeedsRegistered(p)) return {};
  std::size_t live = 0, labelled = 0;
  // Of those that match its labels, the one that comes closest (the most
  // of what it asks for, each resource capped at the request), to name.
  const Worker* closest = nullptr;
  double closest_share = -1;
  std::size_t failed_selector = p.require.size();
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    const Worker& w = *it->second;
    if (!ServesQueue(w.info.spec, queue)) continue;
    live++;
    // A broadcast copy is for its own worker while that one lives.
    if (!p.worker.empty() && Find(ns, p.worker) && w.info.spec.id != p.worker) continue;
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

}  // namespace dray
