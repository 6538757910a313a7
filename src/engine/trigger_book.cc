#include "engine/trigger_book.h"

#include <algorithm>

#include "core/json_writer.h"
#include "core/time_format.h"

namespace dray {

namespace {

constexpr const char* kTriggerLabel = "dray.trigger";

// An event id unique across namespaces: ns + '\0' + id.
std::string EventKey(const std::string& ns, const std::string& id) {
  std::string k;
  k.reserve(ns.size() + 1 + id.size());
  k.append(ns).push_back('\0');
  k.append(id);
  return k;
}

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

TriggerBook::TriggerBook(IdGenerator* ids, std::int64_t window_ms)
    : ids_(ids), window_ms_(window_ms) {}

TriggerBook::~TriggerBook() = default;

void TriggerBook::Index(Entry* tr) {
  const TriggerSpec& s = tr->t.spec;
  if (s.on_task) {
    task_triggers_[s.ns].push_back(tr);
  } else {
    event_triggers_[{s.ns, s.event}].push_back(tr);
  }
}

void TriggerBook::Unindex(Entry* tr) {
  const TriggerSpec& s = tr->t.spec;
  auto drop = [tr](std::vector<Entry*>& v) { v.erase(std::remove(v.begin(), v.end(), tr), v.end()); };
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

void TriggerBook::Restore(Trigger t) {
  auto e = std::make_unique<Entry>();
  e->t = std::move(t);
  e->t.fired = 0;
  Entry* p = e.get();
  triggers_[{p->t.spec.ns, p->t.spec.id}] = std::move(e);
  Index(p);
}

void TriggerBook::RestoreEventId(const std::string& ns, const std::string& id,
                                 TimeMs created_at) {
  const std::string key = EventKey(ns, id);
  event_ids_[key] = created_at;
  event_order_.emplace_back(created_at, key);
}

void TriggerBook::PruneEventIds(TimeMs now) {
  while (!event_order_.empty() && event_order_.front().first + window_ms_ <= now) {
    auto it = event_ids_.find(event_order_.front().second);
    if (it != event_ids_.end() && it->second == event_order_.front().first) event_ids_.erase(it);
    event_order_.pop_front();
  }
}

StatusOr<Trigger> TriggerBook::Create(TriggerSpec&& spec, TimeMs now, TaskHost* host) {
  if (spec.id.empty()) spec.id = ids_->Next(now);
  const auto key = std::make_pair(spec.ns, spec.id);
  if (triggers_.count(key)) {
    return AlreadyExists("a trigger '" + spec.id + "' exists in namespace '" + spec.ns + "'");
  }
  spec.task.ns = spec.ns;
  auto e = std::make_unique<Entry>();
  e->t.spec = std::move(spec);
  e->t.created_at = e->t.updated_at = now;
  Entry* p = e.get();
  triggers_[key] = std::move(e);
  Index(p);
  host->Record(mutation::PutTrigger{std::make_shared<const Trigger>(p->t)});
  return p->t;
}

StatusOr<Trigger> TriggerBook::SetPaused(const std::string& ns, const std::string& id,
                                         bool paused, TimeMs now, TaskHost* host) {
  auto it = triggers_.find({ns, id});
  if (it == triggers_.end()) return NotFound("no trigger '" + id + "' in namespace '" + ns + "'");
  Trigger& t = it->second->t;
  if (t.spec.paused != paused) {
    t.spec.paused = paused;
    t.updated_at = now;
    host->Record(mutation::PutTrigger{std::make_shared<const Trigger>(t)});
  }
  return t;
}

Status TriggerBook::Delete(const std::string& ns, const std::string& id, TaskHost* host) {
  auto it = triggers_.find({ns, id});
  if (it == triggers_.end()) return NotFound("no trigger '" + id + "' in namespace '" + ns + "'");
  Unindex(it->second.get());
  triggers_.erase(it);
  host->Record(mutation::DeleteTrigger{ns, id});
  return Status::Ok();
}

std::optional<Trigger> TriggerBook::Find(const std::string& ns, const std::string& id) const {
  auto it = triggers_.find({ns, id});
  if (it == triggers_.end()) return std::nullopt;
  return it->second->t;
}

std::vector<Trigger> TriggerBook::List(const std::string& ns, const std::string& after,
                                       std::size_t limit) const {
  std::vector<Trigger> out;
  for (auto it = triggers_.upper_bound({ns, after}); it != triggers_.end() && out.size() < limit;
       ++it) {
    if (it->first.first != ns) break;
    out.push_back(it->second->t);
  }
  return out;
}

std::string TriggerBook::FireTrigger(Entry* tr, std::string payload, const char* source_label,
                                     const std::string& source, TimeMs now, TaskHost* host) {
  if (!host->Room(1).ok()) return std::string();
  const TriggerSpec& s = tr->t.spec;
  TaskSpec spec = s.task;
  spec.ns = s.ns;
  spec.payload = std::move(payload);
  spec.labels[kTriggerLabel] = s.id;
  spec.labels[source_label] = source;
  ++tr->t.fired;
  return host->Submit(std::move(spec), now);
}

void TriggerBook::QueueOutcomeTriggers(const Task& t) {
  auto it = task_triggers_.find(t.ns);
  if (it == task_triggers_.end()) return;
  std::string about;  // built once, for the first trigger that matches
  for (Entry* tr : it->second) {
    if (!OutcomeMatches(tr->t.spec, t)) continue;
    if (about.empty()) {
      AppendTaskOutcomeJson(t, &about);
    }
    pending_.push_back(PendingFire{tr, Envelope(tr->t.spec.task.payload, "source", about), t.id});
  }
}

void TriggerBook::FirePending(TimeMs now, TaskHost* host) {
  if (pending_.empty()) return;
  PendingFire p = std::move(pending_.front());
  pending_.pop_front();
  FireTrigger(p.trigger, std::move(p.payload), "dray.source", p.source, now, host);
}

StatusOr<EventOutcome> TriggerBook::Emit(EventSpec&& spec,
                                         const std::function<bool(const TriggerSpec&)>& matches,
                                         TimeMs now, TaskHost* host) {
  EventOutcome r;
  if (!spec.id.empty()) {
    auto seen = event_ids_.find(EventKey(spec.ns, spec.id));
    if (seen != event_ids_.end()) {
      r.duplicate = true;
      r.event.ns = std::move(spec.ns);
      r.event.id = std::move(spec.id);
      r.event.created_at = seen->second;
      return r;
    }
  }
  std::vector<Entry*> fire;
  if (auto it = event_triggers_.find({spec.ns, spec.name}); it != event_triggers_.end()) {
    for (Entry* tr : it->second) {
      if (!tr->t.spec.paused && matches(tr->t.spec)) fire.push_back(tr);
    }
  }
  if (Status room = host->Room(fire.size()); !room.ok()) return room;
  Event& e = r.event;
  e.ns = std::move(spec.ns);
  e.id = spec.id.empty() ? ids_->Next(now) : std::move(spec.id);
  e.name = std::move(spec.name);
  e.payload = std::move(spec.payload);
  e.created_at = now;
  if (!fire.empty()) {
    std::string about = "{\"id\":";
    AppendJsonString(e.id, &about);
    about += ",\"name\":";
    AppendJsonString(e.name, &about);
    about += ",\"payload\":" + e.payload + ",\"created_at\":\"" + FormatRfc3339(now) + "\"}";
    for (Entry* tr : fire) {
      e.tasks.push_back(FireTrigger(tr, Envelope(tr->t.spec.task.payload, "event", about),
                                    "dray.event", e.id, now, host));
    }
  }
  RestoreEventId(e.ns, e.id, now);
  host->Record(mutation::PutEvent{std::make_shared<const Event>(e)});
  return r;
}

}  // namespace dray
