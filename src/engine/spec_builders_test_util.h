// For engine tests: the schedule and trigger specs that the engine-level
// tests (schedule_test.cc, trigger_test.cc) and the books' own tests
// (schedule_book_test.cc, trigger_book_test.cc) both build.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dray/types.h"

namespace dray::testing_specs {

// A schedule every `interval_ms` submitting one-attempt "tick" tasks to
// queue "s".
inline ScheduleSpec Every(std::string id, std::int64_t interval_ms) {
  ScheduleSpec s;
  s.id = std::move(id);
  s.interval_ms = interval_ms;
  s.task.type = "tick";
  s.task.queue = "s";
  s.task.max_attempts = 1;
  return s;
}

// A trigger on event `event` submitting a "ship" task to "shipping".
inline TriggerSpec OnEvent(std::string id, std::string event) {
  TriggerSpec t;
  t.id = std::move(id);
  t.event = std::move(event);
  t.task.type = "ship";
  t.task.queue = "shipping";
  t.task.payload = R"({"carrier":"dhl"})";
  return t;
}

// A trigger on tasks of `queue` ending in one of `states`, submitting an
// "alert" task to "alerts".
inline TriggerSpec OnTask(std::string id, std::string queue, std::vector<TaskState> states) {
  TriggerSpec t;
  t.id = std::move(id);
  t.on_task = true;
  t.task_queue = std::move(queue);
  t.task_states = std::move(states);
  t.task.type = "alert";
  t.task.queue = "alerts";
  return t;
}

}  // namespace dray::testing_specs
