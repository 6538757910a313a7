// The engine's triggers and the event ids it has seen (issue 6,
// docs/events.md).
//
// A trigger on an event name submits its task template when Emit records an
// event of that name whose payload it matches; its tasks are recorded
// before the event, in the same output. A trigger on task outcomes submits
// when a task of its queue and type ends in one of its states: TaskEnded
// queues the fire and the engine submits it with FirePending in the output
// of the transition that ended the task, once that transition is done.
// Either way one commit holds the cause and its tasks: a recorded event or
// outcome never loses its tasks, and never gets them twice. A paused
// trigger fires for nothing. The fired task's payload is {"input": <the
// template's payload>, "event": {...}} or {..., "source": <the task>}, and
// its labels name the trigger and the event or task.
//
// An event id seen within the de-duplication window (the engine's
// idempotency window) makes a second Emit with that id a duplicate that
// does nothing; ids are forgotten by PruneEventIds once the window passes.
//
// Every change to a trigger or an event is recorded through the host
// (PutTrigger, DeleteTrigger, PutEvent); the book does nothing else outside
// itself.
//
// Threading: not thread-safe. The engine owns the book and calls it under
// its own lock, with a TaskHost bound to the call's output.
//
// Complexity: n triggers. Create, SetPaused, Find: O(log n); Delete:
// O(log n + the triggers on its event name or namespace); List: O(log n +
// limit); Emit: O(log n + the triggers on its name); TaskEnded: O(the task
// triggers of the task's namespace), O(1) when there are none;
// PruneEventIds: O(1) amortized per event id.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "dray/status.h"
#include "dray/types.h"
#include "engine/task_host.h"

namespace dray {

struct EventOutcome {
  Event event;             // as recorded (for a duplicate: ns, id and created_at only)
  bool duplicate = false;  // its id was seen within the window: nothing done
};

class TriggerBook {
 public:
  // Triggers and events without an id get one from `ids` (the engine's, so
  // that they sort with its task ids); `ids` must outlive the book. An
  // event id is remembered for `window_ms` after its event.
  TriggerBook(IdGenerator* ids, std::int64_t window_ms);
  TriggerBook(const TriggerBook&) = delete;
  TriggerBook& operator=(const TriggerBook&) = delete;
  ~TriggerBook();

  // Recovery: a stored trigger (its `fired` count starts again at 0), and
  // an event id seen at `created_at`, in the order the events were made.
  void Restore(Trigger t);
  void RestoreEventId(const std::string& ns, const std::string& id, TimeMs created_at);

  // AlreadyExists if the id is taken in the namespace; an empty id gets a
  // UUIDv7.
  StatusOr<Trigger> Create(TriggerSpec&& spec, TimeMs now, TaskHost* host);
  // Records the trigger only if `paused` changes it. NotFound if there is
  // none.
  StatusOr<Trigger> SetPaused(const std::string& ns, const std::string& id, bool paused,
                              TimeMs now, TaskHost* host);
  // NotFound if there is none. Fires it queued before (FirePending) must
  // already have been drained.
  Status Delete(const std::string& ns, const std::string& id, TaskHost* host);
  std::optional<Trigger> Find(const std::string& ns, const std::string& id) const;
  // Up to `limit` triggers of namespace `ns` with ids after `after`, in id
  // order.
  std::vector<Trigger> List(const std::string& ns, const std::string& after,
                            std::size_t limit) const;

  // Records an event and submits a task for each trigger on its name that
  // is not paused and for which `matches` (the caller reads the payload)
  // holds, in the order the triggers were made. A duplicate id does
  // nothing. ResourceExhausted (the host's Room), doing nothing, when the
  // tasks would pass the live-task limit.
  StatusOr<EventOutcome> Emit(EventSpec&& spec,
                              const std::function<bool(const TriggerSpec&)>& matches, TimeMs now,
                              TaskHost* host);

  // Task `t` ended (`t` as it ended): queues a fire for each task trigger
  // it matches, for FirePending. Cheap when there is no task trigger.
  void TaskEnded(const Task& t) {
    if (!task_triggers_.empty()) QueueOutcomeTriggers(t);
  }
  bool has_pending() const { return !pending_.empty(); }
  // Submits the oldest queued fire, if any (nothing at the live-task
  // limit: that fire is let go).
  void FirePending(TimeMs now, TaskHost* host);

  // Forgets the event ids whose window has passed at `now`.
  void PruneEventIds(TimeMs now);

  std::size_t size() const { return triggers_.size(); }

 private:
  struct Entry {
    Trigger t;
  };
  // A trigger's task to submit once the current transition is done.
  struct PendingFire {
    Entry* trigger;
    std::string payload;  // the fired task's payload
    std::string source;   // the source task's id
  };

  void QueueOutcomeTriggers(const Task& t);
  // Submits a trigger's task; returns its id, or "" at the live-task limit.
  std::string FireTrigger(Entry* tr, std::string payload, const char* source_label,
                          const std::string& source, TimeMs now, TaskHost* host);
  void Index(Entry* tr);
  void Unindex(Entry* tr);

  IdGenerator* const ids_;
  const std::int64_t window_ms_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Entry>> triggers_;  // (ns, id)
  // Event triggers by (namespace, event name); task triggers by namespace;
  // each in the order they were made or restored.
  std::map<std::pair<std::string, std::string>, std::vector<Entry*>> event_triggers_;
  std::map<std::string, std::vector<Entry*>> task_triggers_;
  std::deque<PendingFire> pending_;
  // Event ids (ns + '\0' + id) seen within the window, and their order.
  std::unordered_map<std::string, TimeMs> event_ids_;
  std::deque<std::pair<TimeMs, std::string>> event_order_;
};

}  // namespace dray
