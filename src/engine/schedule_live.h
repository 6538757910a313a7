// Engine-internal: a schedule and a trigger as the engine holds them
// (engine.cc, schedules.cc and triggers.cc need the whole types).
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

struct Engine::TriggerLive {
  Trigger t;
};

}  // namespace dray
