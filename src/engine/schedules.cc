// The engine's schedule calls (issue 6, docs/schedules.md): each runs Tick
// where it did before, then asks the ScheduleBook with a host bound to its
// output.
#include "engine/engine.h"
#include "engine/book_host.h"

namespace dray {

void Engine::FireSchedules(TimeMs now, EngineOutput* out) {
  BookHost host(this, out);
  schedules_.Fire(now, &host);
}

void Engine::RestoreSchedule(Schedule s, TimeMs now) {
  schedules_.Restore(std::move(s), now, BookHost(this, nullptr));
}

StatusOr<Schedule> Engine::CreateSchedule(ScheduleSpec&& spec, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  BookHost host(this, out);
  return schedules_.Create(std::move(spec), now, &host);
}

StatusOr<Schedule> Engine::UpdateSchedule(ScheduleSpec&& spec, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  BookHost host(this, out);
  return schedules_.Update(std::move(spec), now, &host);
}

Status Engine::DeleteSchedule(const std::string& ns, const std::string& id, EngineOutput* out) {
  BookHost host(this, out);
  return schedules_.Delete(ns, id, &host);
}

std::optional<Schedule> Engine::FindSchedule(const std::string& ns, const std::string& id,
                                             std::size_t next_n, TimeMs now) const {
  return schedules_.Find(ns, id, next_n, now);
}

std::vector<Schedule> Engine::ListSchedules(const std::string& ns, const std::string& after,
                                            std::size_t limit, std::size_t next_n,
                                            TimeMs now) const {
  return schedules_.List(ns, after, limit, next_n, now);
}

}  // namespace dray
