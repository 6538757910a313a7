// The engine's registered-worker and placement calls (issue 7): the pool
// (worker_pool.h) keeps the workers and decides; the engine runs its timers
// first, ends the attempts a dead or leaving worker held, and submits a
// broadcast's copies.
#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {

void Engine::ReapWorkers(TimeMs now, EngineOutput* out) {
  while (std::unique_ptr<WorkerPool::Worker> gone = pool_.TakeDead(now)) {
    // Unregistered first (TakeDead), so that the steps below do not track it again.
    const std::string why = "worker " + gone->info.spec.id +
                            " declared dead: no sign of life for " +
                            std::to_string(now - gone->info.last_seen) + " ms";
    ReleaseTasksOf(*gone, why, now, out);
    out->made_ready = true;
  }
}

void Engine::ReleaseTasksOf(const WorkerPool::Worker& w, const std::string& why, TimeMs now,
                            EngineOutput* out) {
  // `w` is out of the pool already: the steps below do not change it.
  for (const auto& entry : w.running) {
    Live* l = FindLive(w.info.spec.ns, entry.first);
    if (!l || l->state() != TaskState::kRunning) continue;
    ApplyInput in{now};
    in.error = why;
    EventInput ev{TaskEvent::kExpire};
    ev.jitter_u = std::uniform_real_distribution<double>(0, 1)(rng_);
    (void)Step(l, ev, in, out);
  }
}

WorkerInfo Engine::RegisterWorker(WorkerSpec&& spec, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  const WorkerPool::Worker& w = pool_.Register(std::move(spec), now);
  // Parked tasks it could run come back in line.
  const std::string& ns = w.info.spec.ns;
  for (auto it = queues_.lower_bound({ns, ""}); it != queues_.end() && it->first.first == ns;
       ++it) {
    if (pool_.Unpark(w, it->second.get())) out->made_ready = true;
  }
  // Placed tasks may fit it: serve the waiters.
  if (pool_.placed_ready() > 0) out->made_ready = true;
  return WorkerPool::View(w);
}

StatusOr<WorkerInfo> Engine::WorkerHeartbeat(const std::string& ns, const std::string& id,
                                             TimeMs now, EngineOutput* out) {
  pool_.Saw(pool_.Find(ns, id), now);
  Tick(now, out);
  const WorkerPool::Worker* w = pool_.Find(ns, id);
  if (!w) {
    return NotFound("worker '" + id + "' is not registered (or was declared dead): register again");
  }
  return WorkerPool::View(*w);
}

Status Engine::DeregisterWorker(const std::string& ns, const std::string& id, TimeMs now,
                                EngineOutput* out) {
  Tick(now, out);
  std::unique_ptr<WorkerPool::Worker> gone = pool_.Deregister(ns, id);
  if (!gone) return NotFound("worker '" + id + "' is not registered");
  ReleaseTasksOf(*gone, "worker " + id + " left while holding the task", now, out);
  out->made_ready = true;
  return Status::Ok();
}

std::optional<WorkerInfo> Engine::FindWorker(const std::string& ns, const std::string& id) const {
  const WorkerPool::Worker* w = pool_.Find(ns, id);
  if (!w) return std::nullopt;
  return WorkerPool::View(*w);
}

std::vector<WorkerInfo> Engine::Workers(const std::string& ns) const { return pool_.List(ns); }

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
      if (const Live* l = FindLive(spec.ns, copy.id); l && WorkerPool::PlacementOf(l)) {
        copy.worker = WorkerPool::PlacementOf(l)->worker;
      }
      earlier.push_back(std::move(copy));
    }
    if (!earlier.empty()) return earlier;
  }
  const std::vector<std::string> targets =
      pool_.BroadcastTargets(spec.ns, spec.queue, spec.placement);
  if (targets.empty()) {
    return FailedPrecondition("no live registered worker serves queue '" + spec.queue +
                              "' and could run the task: a broadcast has no one to go to");
  }
  std::vector<TaskSpec> copies;
  const auto total = static_cast<std::int32_t>(targets.size());
  for (std::int32_t i = 0; i < total; ++i) {
    TaskSpec copy = spec;
    copy.placement.worker = targets[static_cast<std::size_t>(i)];
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
    result.push_back(BroadcastCopy{o.id, targets[static_cast<std::size_t>(i)], i, o.created});
  }
  return result;
}

}  // namespace dray
