// The engine's event and trigger calls (issue 6, docs/events.md): each runs
// Tick where it did before, then asks the TriggerBook with a host bound to
// its output.
#include "engine/engine.h"
#include "engine/book_host.h"

namespace dray {

void Engine::RestoreTrigger(Trigger t) { triggers_.Restore(std::move(t)); }

void Engine::RestoreEventId(const std::string& ns, const std::string& id, TimeMs created_at) {
  triggers_.RestoreEventId(ns, id, created_at);
}

StatusOr<Trigger> Engine::CreateTrigger(TriggerSpec&& spec, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  BookHost host(this, out);
  return triggers_.Create(std::move(spec), now, &host);
}

StatusOr<Trigger> Engine::SetTriggerPaused(const std::string& ns, const std::string& id,
                                           bool paused, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  BookHost host(this, out);
  return triggers_.SetPaused(ns, id, paused, now, &host);
}

Status Engine::DeleteTrigger(const std::string& ns, const std::string& id, EngineOutput* out) {
  BookHost host(this, out);
  return triggers_.Delete(ns, id, &host);
}

std::optional<Trigger> Engine::FindTrigger(const std::string& ns, const std::string& id) const {
  return triggers_.Find(ns, id);
}

std::vector<Trigger> Engine::ListTriggers(const std::string& ns, const std::string& after,
                                          std::size_t limit) const {
  return triggers_.List(ns, after, limit);
}

StatusOr<Engine::EventOutcome> Engine::EmitEvent(
    EventSpec&& spec, const std::function<bool(const TriggerSpec&)>& matches, TimeMs now,
    EngineOutput* out) {
  Tick(now, out);
  BookHost host(this, out);
  return triggers_.Emit(std::move(spec), matches, now, &host);
}

}  // namespace dray
