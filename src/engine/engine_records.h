// Engine-internal: a queue, a concurrency key and a workflow as the engine
// holds them (engine.cc and the files beside it need the whole types). A
// live task's records are in live_table.h; schedules and triggers are in
// schedule_book.h and trigger_book.h, a registered worker's in
// worker_pool.h.
#pragma once

#include <array>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "engine/live_table.h"

namespace dray {

// A key unique across namespaces: ns + '\0' + key (idempotency keys).
inline std::string KeyOf(const std::string& ns, const std::string& key) {
  std::string k;
  k.reserve(ns.size() + 1 + key.size());
  k.append(ns).push_back('\0');
  k.append(key);
  return k;
}

// A live workflow: its row, and how many of its tasks are unfinished.
struct WorkflowLive {
  Workflow record;
  std::int64_t unfinished = 0;
  bool failed_any = false;
  std::vector<IdBytes> tasks;  // every task that was live here (cancel walks them)
};

// The unfinished tasks of one concurrency key in a queue, in submit order.
struct KeyGroup {
  const std::string* key = nullptr;  // the queue's map holds it
  std::set<Live*, SeqLess> members;
  std::int32_t running = 0;
  std::int32_t window = 0;  // the limit the last RefreshKey used
};

struct QueueState {
  std::string ns;
  std::string name;
  QueueSettings settings;
  ReadyHeap ready;
  // Ready tasks with a Placement, in the ready heap's order: a lease looks
  // past those the leasing worker cannot take (worker_pool.h).
  std::set<Live*, ReadyLess> placed;
  // Ready placed tasks no live worker could run (heap_pos kParked): out of
  // every lease's way until a worker that could registers.
  std::set<Live*, ReadyLess> parked;
  std::array<std::int64_t, 8> counts{};  // tasks by TaskState value (finished: until purged)
  std::unordered_map<std::string, KeyGroup> keys;
  double pass = 0;  // stride scheduling
  // The rate limit as GCRA, a token bucket kept as one time: `tat` is when
  // the bucket would be full again. A start is allowed at `now` if
  // tat - (burst - 1) * interval <= now, and moves tat on by one interval.
  // One addition per start, so no rounding builds up.
  double tat = 0;
  bool bucket_empty = false;  // restored: the bucket starts empty at first use
};

}  // namespace dray
