#include "engine/schedule_book.h"

#include <algorithm>

#include "core/schedule_time.h"
#include "core/time_format.h"

namespace dray {

namespace {

// The labels a fired task carries, so that a worker and a reader can tell
// which schedule and which tick it came from.
constexpr const char* kScheduleLabel = "dray.schedule";
constexpr const char* kTickLabel = "dray.tick";

// Schedules one Fire handles at most.
constexpr std::size_t kSchedulesPerFire = 2048;

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

struct ScheduleBook::Entry {
  Schedule s;             // as stored (next_fire_times empty)
  ScheduleTiming timing;  // built from s.spec
  TimeMs due = 0;         // when Fire looks at it next
  HeapPos heap_pos = kNotInHeap;
};

bool ScheduleBook::DueLess::operator()(const Entry* a, const Entry* b) const {
  return a->due < b->due;
}
HeapPos& ScheduleBook::DuePos::operator()(Entry* e) const { return e->heap_pos; }

ScheduleBook::ScheduleBook(IdGenerator* ids) : ids_(ids) {}

ScheduleBook::~ScheduleBook() = default;

bool ScheduleBook::RunGoing(const Entry& e, const TaskHost& host) {
  return !e.s.last_task.empty() && host.IsLive(e.s.spec.ns, e.s.last_task);
}

void ScheduleBook::Record(const Entry& e, TaskHost* host) {
  host->Record(mutation::PutSchedule{std::make_shared<const Schedule>(e.s)});
}

void ScheduleBook::Arm(Entry* e, TimeMs now, const TaskHost& host) {
  heap_.erase(e);
  if (e->s.spec.paused) return;
  if (e->s.buffered_tick) {
    if (!RunGoing(*e, host)) {
      e->due = now;  // its previous run has ended: start the buffered tick
      heap_.push(e);
      return;
    }
    buffered_waits_[e->s.last_task] = e;
  }
  const std::optional<TimeMs> next = NextTick(e->timing, e->s.last_tick);
  if (!next) return;  // past its end
  e->due = FireTime(e->timing, *next);
  heap_.push(e);
}

void ScheduleBook::RunEnded(const std::string& task_id, TimeMs now) {
  auto it = buffered_waits_.find(task_id);
  if (it == buffered_waits_.end()) return;
  Entry* e = it->second;
  buffered_waits_.erase(it);
  if (e->s.spec.paused || !e->s.buffered_tick) return;
  e->due = now;
  heap_.update(e);
}

void ScheduleBook::FireTick(Entry* e, TimeMs tick, TimeMs now, TaskHost* host) {
  if (!host->Room(1).ok()) {
    ++e->s.skipped;  // full: the tick is let go rather than the limit broken
    ++ticks_skipped_;
    return;
  }
  TaskSpec spec = e->s.spec.task;
  spec.ns = e->s.spec.ns;
  spec.labels[kScheduleLabel] = e->s.spec.id;
  spec.labels[kTickLabel] = FormatRfc3339(tick);
  e->s.last_task = host->Submit(std::move(spec), now);
  e->s.last_fired_at = now;
  ++e->s.fired;
  ++ticks_fired_;
}

void ScheduleBook::Handle(Entry* e, TimeMs now, TaskHost* host) {
  Schedule& r = e->s;
  bool changed = false;
  if (r.buffered_tick && !RunGoing(*e, *host)) {
    const TimeMs tick = r.buffered_tick;
    buffered_waits_.erase(r.last_task);
    r.buffered_tick = 0;
    FireTick(e, tick, now, host);
    changed = true;
  }
  CatchupPlan plan = Catchup(e->timing, r.last_tick, now, r.spec.misfire,
                             static_cast<std::size_t>(r.spec.max_catchup));
  for (TimeMs tick : plan.fire) {
    const bool going = RunGoing(*e, *host);
    switch (DecideOverlap(r.spec.overlap, going, r.buffered_tick != 0)) {
      case OverlapAction::kStart:
        FireTick(e, tick, now, host);
        break;
      case OverlapAction::kDrop:
        ++r.skipped;
        ++ticks_skipped_;
        break;
      case OverlapAction::kBuffer:
        r.buffered_tick = tick;
        break;
      case OverlapAction::kCancelThenStart:
        host->Cancel(r.spec.ns, r.last_task,
                     "cancelled by schedule " + r.spec.id + ": the tick of " +
                         FormatRfc3339(tick) + " started (overlap cancel_previous)",
                     now);
        FireTick(e, tick, now, host);
        break;
    }
  }
  r.skipped += plan.skipped;
  ticks_skipped_ += static_cast<std::uint64_t>(plan.skipped);
  if (plan.last_due && *plan.last_due > r.last_tick) r.last_tick = *plan.last_due;
  changed = changed || plan.last_due || plan.skipped;
  if (changed) {
    r.updated_at = now;
    Record(*e, host);
  }
}

void ScheduleBook::Fire(TimeMs now, TaskHost* host) {
  std::size_t handled = 0;
  while (Entry* e = heap_.top()) {
    if (e->due > now || handled++ == kSchedulesPerFire) break;
    heap_.pop();
    Handle(e, now, host);
    Arm(e, now, *host);
  }
}

std::optional<TimeMs> ScheduleBook::NextDue() const {
  if (const Entry* e = heap_.top()) return e->due;
  return std::nullopt;
}

void ScheduleBook::Restore(Schedule s, TimeMs now, const TaskHost& host) {
  auto timing = TimingOf(s);
  auto e = std::make_unique<Entry>();
  e->s = std::move(s);
  e->s.next_fire_times.clear();
  if (timing.ok()) {
    e->timing = std::move(*timing);
  } else {
    // Accepted once, refused now (a zone gone from tzdata): kept, paused.
    e->s.spec.paused = true;
  }
  Entry* p = e.get();
  schedules_[{p->s.spec.ns, p->s.spec.id}] = std::move(e);
  Arm(p, now, host);
}

StatusOr<Schedule> ScheduleBook::Create(ScheduleSpec&& spec, TimeMs now, TaskHost* host) {
  if (spec.id.empty()) spec.id = ids_->Next(now);
  const auto key = std::make_pair(spec.ns, spec.id);
  if (schedules_.count(key)) {
    return AlreadyExists("a schedule '" + spec.id + "' exists in namespace '" + spec.ns + "'");
  }
  spec.task.ns = spec.ns;
  auto e = std::make_unique<Entry>();
  e->s.spec = std::move(spec);
  e->s.created_at = e->s.updated_at = now;
  e->s.last_tick = now;  // ticks from now on; none before it is owed
  auto timing = TimingOf(e->s);
  if (!timing.ok()) return timing.status();
  e->timing = std::move(*timing);
  Entry* p = e.get();
  schedules_[key] = std::move(e);
  Arm(p, now, *host);
  Record(*p, host);
  return View(*p, 5, now);
}

StatusOr<Schedule> ScheduleBook::Update(ScheduleSpec&& spec, TimeMs now, TaskHost* host) {
  auto it = schedules_.find({spec.ns, spec.id});
  if (it == schedules_.end()) {
    return NotFound("no schedule '" + spec.id + "' in namespace '" + spec.ns + "'");
  }
  Entry* e = it->second.get();
  spec.task.ns = spec.ns;
  Schedule next = e->s;
  const bool retimed = !SameTiming(next.spec, spec);
  next.spec = std::move(spec);
  if (retimed) next.last_tick = std::max(next.last_tick, now);
  auto timing = TimingOf(next);
  if (!timing.ok()) return timing.status();
  next.updated_at = now;
  if (next.buffered_tick && next.spec.overlap != OverlapPolicy::kBufferOne) next.buffered_tick = 0;
  buffered_waits_.erase(e->s.last_task);
  e->s = std::move(next);
  e->timing = std::move(*timing);
  Arm(e, now, *host);
  Record(*e, host);
  return View(*e, 5, now);
}

Status ScheduleBook::Delete(const std::string& ns, const std::string& id, TaskHost* host) {
  auto it = schedules_.find({ns, id});
  if (it == schedules_.end()) return NotFound("no schedule '" + id + "' in namespace '" + ns + "'");
  Entry* e = it->second.get();
  heap_.erase(e);
  if (auto w = buffered_waits_.find(e->s.last_task); w != buffered_waits_.end() && w->second == e) {
    buffered_waits_.erase(w);
  }
  schedules_.erase(it);
  host->Record(mutation::DeleteSchedule{ns, id});
  return Status::Ok();
}

Schedule ScheduleBook::View(const Entry& e, std::size_t next_n, TimeMs now) {
  Schedule v = e.s;
  if (v.spec.paused) return v;
  // Where the ticks stand: the first after last_tick (or after now, once
  // Fire has caught up), then onwards.
  TimeMs after = v.last_tick;
  if (v.buffered_tick) v.next_fire_times.push_back(std::max(now, e.due));
  for (std::size_t i = v.next_fire_times.size(); i < next_n; ++i) {
    const std::optional<TimeMs> tick = NextTick(e.timing, after);
    if (!tick) break;
    v.next_fire_times.push_back(FireTime(e.timing, *tick));
    after = *tick;
  }
  return v;
}

std::optional<Schedule> ScheduleBook::Find(const std::string& ns, const std::string& id,
                                           std::size_t next_n, TimeMs now) const {
  auto it = schedules_.find({ns, id});
  if (it == schedules_.end()) return std::nullopt;
  return View(*it->second, next_n, now);
}

std::vector<Schedule> ScheduleBook::List(const std::string& ns, const std::string& after,
                                         std::size_t limit, std::size_t next_n,
                                         TimeMs now) const {
  std::vector<Schedule> out;
  for (auto it = schedules_.upper_bound({ns, after}); it != schedules_.end() && out.size() < limit;
       ++it) {
    if (it->first.first != ns) break;
    out.push_back(View(*it->second, next_n, now));
  }
  return out;
}

}  // namespace dray
