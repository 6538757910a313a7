// Recovery's scan on two threads: one reads and decodes rows into batches
// of tasks, the calling thread hands each task to the engine (which must
// happen there: the caller holds its own lock around it). Decoding and the
// engine's work on a task cost about the same, so recovery takes about half
// as long on two cores. Both stores scan this way.
#pragma once

#include <functional>
#include <vector>

#include "dray/status.h"
#include "dray/types.h"

namespace dray {

// Hands batches from the decoding thread to the caller.
class TaskBatchSink {
 public:
  virtual ~TaskBatchSink() = default;
  // Queues one decoded task; blocks while the caller is several batches
  // behind, so memory stays bounded.
  virtual void Add(Task&& t) = 0;
};

// Runs `produce(sink)` on a new thread and calls `consume` on this thread
// for every task it adds, in order. Returns produce's status once both are
// done (consume has then seen every task produce added before it returned).
Status ScanOnTwoThreads(const std::function<Status(TaskBatchSink&)>& produce,
                        const std::function<void(Task&&)>& consume);

}  // namespace dray
