// The engine's registered workers (issue 7): liveness by heartbeat, and the
// release of a dead worker's tasks at once.
#include <algorithm>

#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {

bool Engine::WorkerLess::operator()(const WorkerLive* a, const WorkerLive* b) const {
  return a->deadline < b->deadline;
}
HeapPos& Engine::WorkerPos::operator()(WorkerLive* w) const { return w->heap_pos; }

Engine::WorkerLive* Engine::WorkerOf(const std::string& ns, const std::string& id) const {
  if (workers_.empty() || id.empty()) return nullptr;
  auto it = workers_.find({ns, id});
  return it == workers_.end() ? nullptr : it->second.get();
}

void Engine::SawWorker(WorkerLive* w, TimeMs now) {
  if (!w) return;
  w->info.last_seen = std::max(w->info.last_seen, now);
  w->deadline = w->info.last_seen + options_.worker_grace_ms;
  worker_deadlines_.update(w);
}


void Engine::TrackRunning(const Live* l, const std::string& ns, const std::string& old_worker,
                          const std::string& new_worker, const std::string& task_id) {
  if (old_worker == new_worker) return;
  if (WorkerLive* w = WorkerOf(ns, old_worker)) Unhold(w, task_id);
  if (WorkerLive* w = WorkerOf(ns, new_worker)) Hold(w, l, task_id);
}

WorkerInfo Engine::ViewWorker(const WorkerLive& w) const {
  WorkerInfo info = w.info;
  for (const auto& entry : w.running) info.running.push_back(entry.first);
  info.in_use = w.used;
  info.gpu_devices_in_use.assign(w.gpus_in_use.begin(), w.gpus_in_use.end());
  info.reserved_for = w.reserved_for;
  return info;
}


void Engine::ReapWorkers(TimeMs now, EngineOutput* out) {
  while (WorkerLive* w = worker_deadlines_.top()) {
    if (w->deadline > now) break;
    worker_deadlines_.pop();
    const std::string why = "worker " + w->info.spec.id + " declared dead: no sign of life for " +
                            std::to_string(now - w->info.last_seen) + " ms";
    auto it = workers_.find({w->info.spec.ns, w->info.spec.id});
    std::unique_ptr<WorkerLive> gone = std::move(it->second);
    workers_.erase(it);
    workers_epoch_++;
    // Unregistered first, so that the steps below do not track it again.
    ForgetWorker(gone.get());
    ReleaseTasksOf(gone.get(), why, now, out);
    out->made_ready = true;
  }
}

WorkerInfo Engine::RegisterWorker(WorkerSpec&& spec, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  auto& slot = workers_[{spec.ns, spec.id}];
  if (!slot) {
    slot = std::make_unique<WorkerLive>();
    slot->info.registered_at = now;
    // Tasks it already holds (leased before a server restart) become its
    // own again at their next heartbeat (SawHolder), not by a scan here.
  }
  slot->info.spec = std::move(spec);
  SawWorker(slot.get(), now);
  workers_epoch_++;
  Unpark(*slot, out);
  // Placed tasks may fit it: serve the waiters.
  if (placed_ready_ > 0) out->made_ready = true;
  return ViewWorker(*slot);
}

StatusOr<WorkerInfo> Engine::WorkerHeartbeat(const std::string& ns, const std::string& id,
                                             TimeMs now, EngineOutput* out) {
  SawWorker(WorkerOf(ns, id), now);
  Tick(now, out);
  WorkerLive* w = WorkerOf(ns, id);
  if (!w) {
    return NotFound("worker '" + id + "' is not registered (or was declared dead): register again");
  }
  return ViewWorker(*w);
}

Status Engine::DeregisterWorker(const std::string& ns, const std::string& id, TimeMs now,
                                EngineOutput* out) {
  Tick(now, out);
  auto it = workers_.find({ns, id});
  if (it == workers_.end()) return NotFound("worker '" + id + "' is not registered");
  std::unique_ptr<WorkerLive> gone = std::move(it->second);
  workers_.erase(it);
  worker_deadlines_.erase(gone.get());
  workers_epoch_++;
  ForgetWorker(gone.get());
  ReleaseTasksOf(gone.get(), "worker " + id + " left while holding the task", now, out);
  out->made_ready = true;
  return Status::Ok();
}

std::optional<WorkerInfo> Engine::FindWorker(const std::string& ns, const std::string& id) const {
  const WorkerLive* w = WorkerOf(ns, id);
  if (!w) return std::nullopt;
  return ViewWorker(*w);
}

std::vector<WorkerInfo> Engine::Workers(const std::string& ns) const {
  std::vector<WorkerInfo> out;
  for (auto it = workers_.lower_bound({ns, ""}); it != workers_.end() && it->first.first == ns;
       ++it) {
    out.push_back(ViewWorker(*it->second));
  }
  return out;
}

}  // namespace dray
