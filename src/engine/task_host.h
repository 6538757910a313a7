// What the schedule book and the trigger book (schedule_book.h,
// trigger_book.h) may ask of the engine that owns them, during one engine
// call: whether a task is live, room under the live-task limit, submitting
// or cancelling a task, and recording a mutation in the call's output.
//
// The engine hands a book a host bound to the output of the call in
// progress, so whatever the book makes happen lands in that output in the
// order the book asked for it: a fired tick's task before the schedule's
// new state, an event's tasks before the event. Unit tests drive a book with
// a fake host that keeps what it was asked.
//
// Threading: as the engine (not thread-safe); a host is used only during
// the call it was made for and never kept.
#pragma once

#include <cstddef>
#include <string>

#include "core/records.h"
#include "dray/status.h"
#include "dray/types.h"

namespace dray {

class TaskHost {
 public:
  virtual ~TaskHost() = default;

  // Whether task `id` of namespace `ns` is live: submitted and not yet
  // terminal.
  virtual bool IsLive(const std::string& ns, const std::string& id) const = 0;

  // OK if `n` more live tasks fit under the engine's limit; otherwise
  // ResourceExhausted, saying how many tasks are live and the limit.
  virtual Status Room(std::size_t n) const = 0;

  // Submits a task made from `spec` into queue (spec.ns, spec.queue), which
  // is created (and recorded) if new, records the task, and returns its new
  // id. The caller has checked Room first: Submit itself never refuses.
  virtual std::string Submit(TaskSpec&& spec, TimeMs now) = 0;

  // Cancels live task `id` of `ns` with `why` as its error; a running task
  // is only asked to stop. Nothing if it is not live. Ending the task may
  // call back into the book (a buffered tick waiting for it, an outcome
  // trigger), as any task ending does.
  virtual void Cancel(const std::string& ns, const std::string& id, const std::string& why,
                      TimeMs now) = 0;

  // Appends `m` to the call's mutations, after those already there.
  virtual void Record(Mutation m) = 0;
};

}  // namespace dray
