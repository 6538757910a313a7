#include "core/schedule_time.h"

#include <algorithm>
#include <deque>

namespace dray {

namespace {

// floor(a / b) for b > 0, also for negative a.
std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// SplitMix64: a well-mixed 64-bit hash of (id, tick).
std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr std::size_t kMaxWalk = 1'000'000;

}  // namespace

std::optional<TimeMs> NextTick(const ScheduleTiming& t, TimeMs after) {
  // Nothing before the start: begin the search just before it.
  if (t.start_at && after < t.start_at) after = t.start_at - 1;
  std::optional<TimeMs> next;
  if (t.cron) {
    if (!t.zone) return std::nullopt;
    next = t.cron->Next(after, *t.zone);
  } else if (t.interval_ms > 0) {
    next = t.anchor + (FloorDiv(after - t.anchor, t.interval_ms) + 1) * t.interval_ms;
  }
  if (next && t.end_at && *next > t.end_at) return std::nullopt;
  return next;
}

TimeMs FireTime(const ScheduleTiming& t, TimeMs tick) {
  if (t.jitter_ms <= 0) return tick;
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a of the id, then mixed with the tick
  for (char c : t.id) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  h = Mix(h ^ static_cast<std::uint64_t>(tick));
  return tick + static_cast<TimeMs>(h % static_cast<std::uint64_t>(t.jitter_ms));
}

CatchupPlan Catchup(const ScheduleTiming& t, TimeMs last, TimeMs now, MisfirePolicy policy,
                    std::size_t max_all, std::int64_t grace_ms) {
  CatchupPlan plan;
  // Ticks whose fire time may be at or before `now` are those up to `now`.
  std::deque<TimeMs> due;  // the newest max_all (at least one) kept
  const std::size_t keep = std::max<std::size_t>(max_all, 1);
  TimeMs from = last;
  // An interval can skip ahead arithmetically to the ticks that matter.
  if (!t.cron && t.interval_ms > 0) {
    const TimeMs begin = std::max(last, t.start_at ? t.start_at - 1 : last);
    const std::int64_t first = FloorDiv(begin - t.anchor, t.interval_ms) + 1;
    const std::int64_t newest = FloorDiv(now - t.anchor, t.interval_ms);
    const std::int64_t window = static_cast<std::int64_t>(keep) +
                                (t.jitter_ms + t.interval_ms - 1) / t.interval_ms + 1;
    if (newest - first + 1 > window) {
      plan.skipped += newest - window - first + 1;
      from = t.anchor + (newest - window) * t.interval_ms;
    }
  }
  std::size_t walked = 0;
  std::optional<TimeMs> tick = NextTick(t, from);
  while (tick && *tick <= now) {
    if (FireTime(t, *tick) <= now) {
      due.push_back(*tick);
      plan.last_due = *tick;
      if (due.size() > keep) {
        due.pop_front();
        ++plan.skipped;
      }
    } else {
      // Its jitter puts it after now: it is not due yet, nor (ticks being
      // handled in order) is any after it.
      plan.next = *tick;
      break;
    }
    if (++walked == kMaxWalk) {
      // A cron schedule that ticks every second, down for weeks: count
      // what was walked and jump to the present.
      plan.skipped += static_cast<std::int64_t>(due.size());
      due.clear();
      tick = NextTick(t, now - 1);
      continue;
    }
    tick = NextTick(t, *tick);
  }
  if (!plan.next) plan.next = tick;
  if (due.empty()) return plan;
  switch (policy) {
    case MisfirePolicy::kAll:
      plan.fire.assign(due.begin(), due.end());
      break;
    case MisfirePolicy::kOnce:
      plan.fire.push_back(due.back());
      plan.skipped += static_cast<std::int64_t>(due.size()) - 1;
      break;
    case MisfirePolicy::kSkip:
      // Late by no more than the grace: on time, not missed.
      for (TimeMs d : due) {
        if (now - FireTime(t, d) <= grace_ms) {
          plan.fire.push_back(d);
        } else {
          ++plan.skipped;
        }
      }
      break;
  }
  return plan;
}

OverlapAction DecideOverlap(OverlapPolicy policy, bool running, bool buffered) {
  if (!running) return OverlapAction::kStart;
  switch (policy) {
    case OverlapPolicy::kAllow: return OverlapAction::kStart;
    case OverlapPolicy::kSkip: return OverlapAction::kDrop;
    case OverlapPolicy::kBufferOne: return buffered ? OverlapAction::kDrop : OverlapAction::kBuffer;
    case OverlapPolicy::kCancelPrevious: return OverlapAction::kCancelThenStart;
  }
  return OverlapAction::kStart;
}

}  // namespace dray
