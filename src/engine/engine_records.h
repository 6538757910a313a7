// Engine-internal: a schedule, a trigger and a registered worker as the
// engine holds them (engine.cc and the files beside it need the whole types).
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

struct Engine::WorkerLive {
  WorkerInfo info;                 // `running` left empty: the set below
  std::set<std::string> running;   // ids of the tasks it holds
  TimeMs deadline = 0;             // last_seen + the grace
  HeapPos heap_pos = kNotInHeap;
};

struct Engine::TriggerLive {
  Trigger t;
};

}  // namespace dray
