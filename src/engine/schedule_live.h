// Engine-internal: a schedule as the engine holds it (engine.cc and
// schedules.cc both need the whole type).
#pragma once

#include "core/schedule_time.h"
#include "engine/engine.h"

namespace dray {

struct Engine::ScheduleLive {
  Schedule s;             // as stored (next_fire_times empty)
  ScheduleTiming timing;  // built from s.spec
  TimeMs due = 0;         // when Tick looks at it next
  HeapPos heap_pos = kNotInHeap;
};

}  // namespace dray
