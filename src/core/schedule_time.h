// When a schedule fires (issue 6): its ticks from a cron expression in a
// time zone or from a fixed interval, bounded by start and end times, each
// moved by a jitter that is the same for the same tick on every node and
// after every restart; and which missed ticks to fire after downtime.
//
// Pure: no clock, no I/O. The engine keeps, per schedule, the last tick it
// fired (committed with the task that tick created) and asks Catchup what
// is due.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/cron.h"
#include "dray/types.h"

namespace dray {

// What a tick does about a previous run still going (OverlapPolicy in
// dray/types.h).
enum class OverlapAction : std::uint8_t {
  kStart,                // submit this tick's task
  kDrop,                 // let the tick go
  kBuffer,               // remember it: submit when the previous run ends
  kCancelThenStart,      // cancel the previous run, submit this tick's task
};
// `running`: the previous run's task has not finished; `buffered`: a tick
// already waits for it (kBufferOne keeps one).
OverlapAction DecideOverlap(OverlapPolicy policy, bool running, bool buffered);

struct ScheduleTiming {
  std::optional<CronExpr> cron;  // either this, in `zone`...
  std::optional<TimeZone> zone;
  std::int64_t interval_ms = 0;  // ...or ticks at anchor + k * interval_ms
  TimeMs anchor = 0;             // the interval's origin (start_at, else creation)
  TimeMs start_at = 0;           // no tick before (0: none)
  TimeMs end_at = 0;             // no tick after (0: none)
  std::int64_t jitter_ms = 0;    // each fire moved later by [0, jitter_ms)
  std::string id;                // seeds the jitter
};

// The first tick strictly after `after`, within start and end; nullopt when
// there is none (past the end). Nominal: without the jitter.
std::optional<TimeMs> NextTick(const ScheduleTiming& t, TimeMs after);

// When `tick` fires: tick + a jitter drawn from (id, tick), so every node
// and every restart agrees.
TimeMs FireTime(const ScheduleTiming& t, TimeMs tick);

struct CatchupPlan {
  std::vector<TimeMs> fire;  // ticks to fire now, oldest first
  std::int64_t skipped = 0;  // missed ticks not fired (policy or bound)
  std::optional<TimeMs> next;  // the first tick after `now` (nominal)
  // The newest tick due, fired or not: where the schedule has got to.
  std::optional<TimeMs> last_due;
};

// The ticks after `last` (the last tick handled; 0: none yet, from the
// schedule's start) whose fire time is at or before `now`, in order up to
// the first that is not due (its jitter ahead of `now`), treated by
// `policy`. A tick late by no more than `grace_ms` is on time, not missed,
// and fires under every policy. Missed ones: kAll fires up to `max_all`
// (the newest, when there are more), kOnce fires the newest due tick alone
// for all of them, kSkip fires none. An interval skips arithmetically to
// the ticks that matter; cron walks its ticks, up to a million, and then
// jumps to the present (counting what it walked as skipped).
CatchupPlan Catchup(const ScheduleTiming& t, TimeMs last, TimeMs now, MisfirePolicy policy,
                    std::size_t max_all = 100, std::int64_t grace_ms = 60'000);

}  // namespace dray
