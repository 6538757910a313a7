// The engine's events and triggers (issue 6, docs/events.md).
#include <algorithm>

#include "core/json_writer.h"
#include "core/time_format.h"
#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {

namespace {

constexpr const char* kTriggerLabel = "dray.trigger";

// {"input": <template payload>, "<what>": <about>}: the fired task's payload.
std::string Envelope(const std::string& input, const char* what, const std::string& about) {
  std::string p = "{\"input\":";
  p += input.empty() ? "null" : input;
  p += ",\"";
  p += what;
  p += "\":";
  p += about;
  p.push_back('}');
  return p;
}

bool OutcomeMatches(const TriggerSpec& s, const Task& t) {
  if (s.paused) return false;
  if (!s.task_queue.empty() && s.task_queue != t.queue) return false;
  if (!s.task_type.empty() && s.task_type != t.type) return false;
  return std::find(s.task_states.begin(), s.task_states.end(), t.state) != s.task_states.end();
}

}  // namespace

void Engine::IndexTrigger(TriggerLive* tr) {
  const TriggerSpec& s = tr->t.spec;
  if (s.on_task) {
    task_triggers_[s.ns].push_back(tr);
  } else {
    event_triggers_[{s.ns, s.event}].push_back(tr);
  }
}

void Engine::UnindexTrigger(TriggerLive* tr) {
  const TriggerSpec& s = tr->t.spec;
  auto drop = [tr](std::vector<TriggerLive*>& v) { v.erase(std::remove(v.begin(), v.end(), tr), v.end()); };
  if (s.on_task) {
    auto it = task_triggers_.find(s.ns);
    if (it == task_triggers_.end()) return;
    drop(it->second);
    if (it->second.empty()) task_triggers_.erase(it);
  } else {
    auto it = event_triggers_.find({s.ns, s.event});
    if (it == event_triggers_.end()) return;
    drop(it->second);
    if (it->second.empty()) event_triggers_.erase(it);
  }
}

void Engine::RestoreTrigger(Trigger t) {
  auto live = std::make_unique<TriggerLive>();
  live->t = std::move(t);
  live->t.fired = 0;
  TriggerLive* p = live.get();
  triggers_[{p->t.spec.ns, p->t.spec.id}] = std::move(live);
  IndexTrigger(p);
}

void Engine::RestoreEventId(const std::string& ns, const std::string& id, TimeMs created_at) {
  const std::string key = KeyOf(ns, id);
  event_ids_[key] = created_at;
  event_order_.emplace_back(created_at, key);
}

void Engine::PruneEventIds(TimeMs now) {
  while (!event_order_.empty() &&
         event_order_.front().first + options_.idempotency_window_ms <= now) {
    auto it = event_ids_.find(event_order_.front().second);
    if (it != event_ids_.end() && it->second == event_order_.front().first) event_ids_.erase(it);
    event_order_.pop_front();
  }
}

StatusOr<Trigger> Engine::CreateTrigger(TriggerSpec&& spec, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  if (spec.id.empty()) spec.id = ids_.Next(now);
  const auto key = std::make_pair(spec.ns, spec.id);
  if (triggers_.count(key)) {
    return AlreadyExists("a trigger '" + spec.id + "' exists in namespace '" + spec.ns + "'");
  }
  spec.task.ns = spec.ns;
  auto live = std::make_unique<TriggerLive>();
  live->t.spec = std::move(spec);
  live->t.created_at = live->t.updated_at = now;
  TriggerLive* p = live.get();
  triggers_[key] = std::move(live);
  IndexTrigger(p);
  out->mutations.push_back(mutation::PutTrigger{std::make_shared<const Trigger>(p->t)});
  return p->t;
}

StatusOr<Trigger> Engine::SetTriggerPaused(const std::string& ns, const std::string& id,
                                           bool paused, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  auto it = triggers_.find({ns, id});
  if (it == triggers_.end()) return NotFound("no trigger '" + id + "' in namespace '" + ns + "'");
  Trigger& t = it->second->t;
  if (t.spec.paused != paused) {
    t.spec.paused = paused;
    t.updated_at = now;
    out->mutations.push_back(mutation::PutTrigger{std::make_shared<const Trigger>(t)});
  }
  return t;
}

Status Engine::DeleteTrigger(const std::string& ns, const std::string& id, EngineOutput* out) {
  auto it = triggers_.find({ns, id});
  if (it == triggers_.end()) return NotFound("no trigger '" + id + "' in namespace '" + ns + "'");
  UnindexTrigger(it->second.get());
  triggers_.erase(it);
  out->mutations.push_back(mutation::DeleteTrigger{ns, id});
  return Status::Ok();
}

std::optional<Trigger> Engine::FindTrigger(const std::string& ns, const std::string& id) const {
  auto it = triggers_.find({ns, id});
  if (it == triggers_.end()) return std::nullopt;
  return it->second->t;
}

std::vector<Trigger> Engine::ListTriggers(const std::string& ns, const std::string& after,
                                          std::size_t limit) const {
  std::vector<Trigger> out;
  for (auto it = triggers_.upper_bound({ns, after}); it != triggers_.end() && out.size() < limit;
       ++it) {
    if (it->first.first != ns) break;
    out.push_back(it->second->t);
  }
  return out;
}

std::string Engine::FireTrigger(TriggerLive* tr, std::string payload, const char* source_label,
                                const std::string& source, TimeMs now, EngineOutput* out) {
  if (live_.size() >= options_.max_live_tasks) return std::string();
  const TriggerSpec& s = tr->t.spec;
  TaskSpec spec = s.task;
  spec.ns = s.ns;
  spec.payload = std::move(payload);
  spec.labels[kTriggerLabel] = s.id;
  spec.labels[source_label] = source;
  Task t = MakeTask(std::move(spec), QueueFor(s.ns, s.task.queue, out), now);
  std::string id = t.id;
  ++tr->t.fired;
  Insert(std::move(t), out);
  return id;
}

void Engine::QueueOutcomeTriggers(const Task& t) {
  auto it = task_triggers_.find(t.ns);
  if (it == task_triggers_.end()) return;
  std::string about;  // built once, for the first trigger that matches
  for (TriggerLive* tr : it->second) {
    if (!OutcomeMatches(tr->t.spec, t)) continue;
    if (about.empty()) {
      AppendTaskOutcomeJson(t, &about);
    }
    pending_fires_.push_back(PendingFire{tr, Envelope(tr->t.spec.task.payload, "source", about), t.id});
  }
}

StatusOr<Engine::EventOutcome> Engine::EmitEvent(
    EventSpec&& spec, const std::function<bool(const TriggerSpec&)>& matches, TimeMs now,
    EngineOutput* out) {
  Tick(now, out);
  EventOutcome r;
  if (!spec.id.empty()) {
    auto seen = event_ids_.find(KeyOf(spec.ns, spec.id));
    if (seen != event_ids_.end()) {
      r.duplicate = true;
      r.event.ns = std::move(spec.ns);
      r.event.id = std::move(spec.id);
      r.event.created_at = seen->second;
      return r;
    }
  }
  std::vector<TriggerLive*> fire;
  if (auto it = event_triggers_.find({spec.ns, spec.name}); it != event_triggers_.end()) {
    for (TriggerLive* tr : it->second) {
      if (!tr->t.spec.paused && matches(tr->t.spec)) fire.push_back(tr);
    }
  }
  if (live_.size() + fire.size() > options_.max_live_tasks) {
    return ResourceExhausted("the server holds " + std::to_string(live_.size()) +
                             " live tasks; the limit is " +
                             std::to_string(options_.max_live_tasks));
  }
  Event& e = r.event;
  e.ns = std::move(spec.ns);
  e.id = spec.id.empty() ? ids_.Next(now) : std::move(spec.id);
  e.name = std::move(spec.name);
  e.payload = std::move(spec.payload);
  e.created_at = now;
  if (!fire.empty()) {
    std::string about = "{\"id\":";
    AppendJsonString(e.id, &about);
    about += ",\"name\":";
    AppendJsonString(e.name, &about);
    about += ",\"payload\":" + e.payload + ",\"created_at\":\"" + FormatRfc3339(now) + "\"}";
    for (TriggerLive* tr : fire) {
      e.tasks.push_back(FireTrigger(tr, Envelope(tr->t.spec.task.payload, "event", about),
                                    "dray.event", e.id, now, out));
    }
  }
  RestoreEventId(e.ns, e.id, now);
  out->mutations.push_back(mutation::PutEvent{std::make_shared<const Event>(e)});
  return r;
}

}  // namespace dray
