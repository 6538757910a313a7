// The engine's schedules (issue 6, docs/schedules.md): a heap of schedules
// by due time, fired from Tick.
#include <algorithm>

#include "core/schedule_time.h"
#include "core/time_format.h"
#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {

namespace {

// The labels a fired task carries, so that a worker and a reader can tell
// which schedule and which tick it came from.
constexpr const char* kScheduleLabel = "dray.schedule";
constexpr const char* kTickLabel = "dray.tick";

// Schedules one Tick handles at most (see FireSchedules).
constexpr std::size_t kSchedulesPerTick = 2048;

StatusOr<ScheduleTiming> TimingOf(const Schedule& s) {
  ScheduleTiming t;
  const ScheduleSpec& spec = s.spec;
  if (!spec.cron.empty()) {
    auto cron = CronExpr::Parse(spec.cron);
    if (!cron.ok()) return cron.status();
    auto zone = TimeZone::Load(spec.timezone);
    if (!zone.ok()) return zone.status();
    t.cron = std::move(*cron);
    t.zone = std::move(*zone);
  } else {
    t.interval_ms = spec.interval_ms;
  }
  t.start_at = spec.start_at.value_or(0);
  t.end_at = spec.end_at.value_or(0);
  t.anchor = spec.start_at.value_or(s.created_at);
  t.jitter_ms = spec.jitter_ms;
  t.id = spec.ns + "/" + spec.id;
  return t;
}

bool SameTiming(const ScheduleSpec& a, const ScheduleSpec& b) {
  return a.cron == b.cron && a.timezone == b.timezone && a.interval_ms == b.interval_ms &&
         a.start_at == b.start_at;
}

}  // namespace

bool Engine::ScheduleLess::operator()(const ScheduleLive* a, const ScheduleLive* b) const {
  return a->due < b->due;
}
HeapPos& Engine::SchedulePos::operator()(ScheduleLive* s) const { return s->heap_pos; }

bool Engine::RunGoing(const ScheduleLive* s) const {
  return !s->s.last_task.empty() && IsLive(s->s.spec.ns, s->s.last_task);
}

void Engine::EmitSchedule(const ScheduleLive& s, EngineOutput* out) {
  out->mutations.push_back(mutation::PutSchedule{std::make_shared<const Schedule>(s.s)});
}

void Engine::ArmSchedule(ScheduleLive* s, TimeMs now) {
  schedule_heap_.erase(s);
  if (s->s.spec.paused) return;
  if (s->s.buffered_tick) {
    if (!RunGoing(s)) {
      s->due = now;  // its previous run has ended: start the buffered tick
      schedule_heap_.push(s);
      return;
    }
    buffered_waits_[s->s.last_task] = s;
  }
  const std::optional<TimeMs> next = NextTick(s->timing, s->s.last_tick);
  if (!next) return;  // past its end
  s->due = FireTime(s->timing, *next);
  schedule_heap_.push(s);
}

void Engine::ScheduledRunEnded(const std::string& id, TimeMs now) {
  auto it = buffered_waits_.find(id);
  if (it == buffered_waits_.end()) return;
  ScheduleLive* s = it->second;
  buffered_waits_.erase(it);
  if (s->s.spec.paused || !s->s.buffered_tick) return;
  s->due = now;
  schedule_heap_.update(s);
}

void Engine::FireTick(ScheduleLive* s, TimeMs tick, TimeMs now, EngineOutput* out) {
  if (live_.size() >= options_.max_live_tasks) {
    ++s->s.skipped;  // full: the tick is let go rather than the limit broken
    ++ticks_skipped_;
    return;
  }
  TaskSpec spec = s->s.spec.task;
  spec.ns = s->s.spec.ns;
  spec.labels[kScheduleLabel] = s->s.spec.id;
  spec.labels[kTickLabel] = FormatRfc3339(tick);
  Task t = MakeTask(std::move(spec), QueueFor(s->s.spec.ns, s->s.spec.task.queue, out), now);
  s->s.last_task = t.id;
  s->s.last_fired_at = now;
  ++s->s.fired;
  ++ticks_fired_;
  Insert(std::move(t), out);
}

void Engine::HandleSchedule(ScheduleLive* s, TimeMs now, EngineOutput* out) {
  Schedule& r = s->s;
  bool changed = false;
  if (r.buffered_tick && !RunGoing(s)) {
    const TimeMs tick = r.buffered_tick;
    buffered_waits_.erase(r.last_task);
    r.buffered_tick = 0;
    FireTick(s, tick, now, out);
    changed = true;
  }
  CatchupPlan plan = Catchup(s->timing, r.last_tick, now, r.spec.misfire,
                             static_cast<std::size_t>(r.spec.max_catchup));
  for (TimeMs tick : plan.fire) {
    const bool going = RunGoing(s);
    switch (DecideOverlap(r.spec.overlap, going, r.buffered_tick != 0)) {
      case OverlapAction::kStart:
        FireTick(s, tick, now, out);
        break;
      case OverlapAction::kDrop:
        ++r.skipped;
        ++ticks_skipped_;
        break;
      case OverlapAction::kBuffer:
        r.buffered_tick = tick;
        break;
      case OverlapAction::kCancelThenStart: {
        if (Live* prev = FindLive(r.spec.ns, r.last_task)) {
          const std::string why = "cancelled by schedule " + r.spec.id + ": the tick of " +
                                  FormatRfc3339(tick) + " started (overlap cancel_previous)";
          ApplyInput in{now};
          in.error = why;  // a view: `why` must outlive the step
          (void)Step(prev, EventInput{TaskEvent::kCancel}, in, out);
        }
        FireTick(s, tick, now, out);
        break;
      }
    }
  }
  r.skipped += plan.skipped;
  ticks_skipped_ += static_cast<std::uint64_t>(plan.skipped);
  if (plan.last_due && *plan.last_due > r.last_tick) r.last_tick = *plan.last_due;
  changed = changed || plan.last_due || plan.skipped;
  if (changed) {
    r.updated_at = now;
    EmitSchedule(*s, out);
  }
}

void Engine::FireSchedules(TimeMs now, EngineOutput* out) {
  // A bounded share per call: the caller holds a lock others wait on, and
  // the rest stays due (NextWakeup says now), so the next call goes on.
  std::size_t handled = 0;
  while (ScheduleLive* s = schedule_heap_.top()) {
    if (s->due > now || handled++ == kSchedulesPerTick) break;
    schedule_heap_.pop();
    HandleSchedule(s, now, out);
    ArmSchedule(s, now);
  }
}

void Engine::RestoreSchedule(Schedule s, TimeMs now) {
  auto timing = TimingOf(s);
  auto live = std::make_unique<ScheduleLive>();
  live->s = std::move(s);
  live->s.next_fire_times.clear();
  if (timing.ok()) {
    live->timing = std::move(*timing);
  } else {
    // Accepted once, refused now (a zone gone from tzdata): kept, paused.
    live->s.spec.paused = true;
  }
  ScheduleLive* p = live.get();
  schedules_[{p->s.spec.ns, p->s.spec.id}] = std::move(live);
  ArmSchedule(p, now);
}

StatusOr<Schedule> Engine::CreateSchedule(ScheduleSpec&& spec, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  if (spec.id.empty()) spec.id = ids_.Next(now);
  const auto key = std::make_pair(spec.ns, spec.id);
  if (schedules_.count(key)) {
    return AlreadyExists("a schedule '" + spec.id + "' exists in namespace '" + spec.ns + "'");
  }
  spec.task.ns = spec.ns;
  auto live = std::make_unique<ScheduleLive>();
  live->s.spec = std::move(spec);
  live->s.created_at = live->s.updated_at = now;
  live->s.last_tick = now;  // ticks from now on; none before it is owed
  auto timing = TimingOf(live->s);
  if (!timing.ok()) return timing.status();
  live->timing = std::move(*timing);
  ScheduleLive* p = live.get();
  schedules_[key] = std::move(live);
  ArmSchedule(p, now);
  EmitSchedule(*p, out);
  return ViewSchedule(*p, 5, now);
}

StatusOr<Schedule> Engine::UpdateSchedule(ScheduleSpec&& spec, TimeMs now, EngineOutput* out) {
  Tick(now, out);
  auto it = schedules_.find({spec.ns, spec.id});
  if (it == schedules_.end()) {
    return NotFound("no schedule '" + spec.id + "' in namespace '" + spec.ns + "'");
  }
  ScheduleLive* s = it->second.get();
  spec.task.ns = spec.ns;
  Schedule next = s->s;
  const bool retimed = !SameTiming(next.spec, spec);
  next.spec = std::move(spec);
  if (retimed) next.last_tick = std::max(next.last_tick, now);
  auto timing = TimingOf(next);
  if (!timing.ok()) return timing.status();
  next.updated_at = now;
  if (next.buffered_tick && next.spec.overlap != OverlapPolicy::kBufferOne) next.buffered_tick = 0;
  buffered_waits_.erase(s->s.last_task);
  s->s = std::move(next);
  s->timing = std::move(*timing);
  ArmSchedule(s, now);
  EmitSchedule(*s, out);
  return ViewSchedule(*s, 5, now);
}

Status Engine::DeleteSchedule(const std::string& ns, const std::string& id, EngineOutput* out) {
  auto it = schedules_.find({ns, id});
  if (it == schedules_.end()) return NotFound("no schedule '" + id + "' in namespace '" + ns + "'");
  ScheduleLive* s = it->second.get();
  schedule_heap_.erase(s);
  if (auto w = buffered_waits_.find(s->s.last_task); w != buffered_waits_.end() && w->second == s) {
    buffered_waits_.erase(w);
  }
  schedules_.erase(it);
  out->mutations.push_back(mutation::DeleteSchedule{ns, id});
  return Status::Ok();
}

Schedule Engine::ViewSchedule(const ScheduleLive& s, std::size_t next_n, TimeMs now) const {
  Schedule v = s.s;
  if (v.spec.paused) return v;
  // Where the ticks stand: the first after last_tick (or after now, once
  // Tick has caught up), then onwards.
  TimeMs after = v.last_tick;
  if (v.buffered_tick) v.next_fire_times.push_back(std::max(now, s.due));
  for (std::size_t i = v.next_fire_times.size(); i < next_n; ++i) {
    const std::optional<TimeMs> tick = NextTick(s.timing, after);
    if (!tick) break;
    v.next_fire_times.push_back(FireTime(s.timing, *tick));
    after = *tick;
  }
  return v;
}

std::optional<Schedule> Engine::FindSchedule(const std::string& ns, const std::string& id,
                                             std::size_t next_n, TimeMs now) const {
  auto it = schedules_.find({ns, id});
  if (it == schedules_.end()) return std::nullopt;
  return ViewSchedule(*it->second, next_n, now);
}

std::vector<Schedule> Engine::ListSchedules(const std::string& ns, const std::string& after,
                                            std::size_t limit, std::size_t next_n,
                                            TimeMs now) const {
  std::vector<Schedule> out;
  for (auto it = schedules_.upper_bound({ns, after}); it != schedules_.end() && out.size() < limit;
       ++it) {
    if (it->first.first != ns) break;
    out.push_back(ViewSchedule(*it->second, next_n, now));
  }
  return out;
}

}  // namespace dray
