// The engine's schedules (issue 6, docs/schedules.md): every schedule's
// stored row and timing, a heap of them by when each is next due, and the
// buffered ticks waiting for a previous run to end.
//
// Fire(now) handles the schedules due at `now`. Each handled schedule's
// ticks are treated by its misfire policy (Catchup in core/schedule_time.h)
// and each tick to fire by its overlap policy against the previous run's
// task: started, let go (counted in `skipped`), buffered (buffer_one: it
// starts as soon as that task ends, see TaskEnded) or started after
// cancelling that task. A started tick submits the schedule's task template
// through the host, labelled with the schedule's id and the tick; the
// schedule's new row (last_tick, last_task, counts) is recorded after its
// tasks in the same output, so one commit holds both and a restart neither
// repeats nor loses a tick. At the live-task limit a tick is let go rather
// than the limit broken.
//
// Every change to a schedule is recorded through the host as a PutSchedule
// or DeleteSchedule mutation; the book does nothing else outside itself.
//
// Threading: not thread-safe. The engine owns the book and calls it under
// its own lock, with a TaskHost bound to the call's output.
//
// Complexity: n schedules. Fire: O(log n) per schedule handled, plus its
// ticks; Create, Update, Delete: O(log n); Find: O(log n + next_n); List:
// O(log n + limit * next_n); NextDue, TaskEnded: O(1) (expected).
#pragma once

#include <cstddef>
#include <cstdint>
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
#include "engine/indexed_heap.h"
#include "engine/task_host.h"

namespace dray {

class ScheduleBook {
 public:
  // Schedules created without an id get one from `ids` (the engine's, so
  // that they sort with its task ids); `ids` must outlive the book.
  explicit ScheduleBook(IdGenerator* ids);
  ScheduleBook(const ScheduleBook&) = delete;
  ScheduleBook& operator=(const ScheduleBook&) = delete;
  ~ScheduleBook();

  // Recovery: a stored schedule, after the tasks are restored (overlap asks
  // `host` whether the last run's task is live). One whose timing is
  // refused now (a zone gone from tzdata) is kept, paused. Records nothing.
  void Restore(Schedule s, TimeMs now, const TaskHost& host);

  // A new schedule; its first tick is the first after `now` (and after
  // start_at). An empty id gets a UUIDv7. AlreadyExists if the id is taken
  // in the namespace; the error of a bad cron expression or time zone.
  // Returns it with its next 5 fire times.
  StatusOr<Schedule> Create(ScheduleSpec&& spec, TimeMs now, TaskHost* host);
  // Replaces a schedule's spec. A new timing (cron, zone, interval, start)
  // counts from `now`; otherwise the ticks missed while paused are treated
  // by the misfire policy when it resumes. A buffered tick is dropped
  // unless the overlap policy is still buffer_one. NotFound if there is
  // none; the error of a bad cron expression or time zone, changing nothing.
  StatusOr<Schedule> Update(ScheduleSpec&& spec, TimeMs now, TaskHost* host);
  // The tasks it submitted stay. NotFound if there is none.
  Status Delete(const std::string& ns, const std::string& id, TaskHost* host);

  // With the next `next_n` fire times from `now` (none while paused).
  std::optional<Schedule> Find(const std::string& ns, const std::string& id, std::size_t next_n,
                               TimeMs now) const;
  // Up to `limit` schedules of namespace `ns` with ids after `after`, in id
  // order.
  std::vector<Schedule> List(const std::string& ns, const std::string& after, std::size_t limit,
                             std::size_t next_n, TimeMs now) const;

  // Handles the schedules due at `now`, earliest first, at most 2,048 of
  // them (the caller holds a lock others wait on); the rest stay due, so
  // NextDue is then `now` and the next call goes on.
  void Fire(TimeMs now, TaskHost* host);
  // When Fire next has work, if ever.
  std::optional<TimeMs> NextDue() const;
  // Task `task_id` ended (any terminal state): a schedule whose buffered
  // tick waited for it is due at `now`. Cheap when no tick is buffered.
  void TaskEnded(const std::string& task_id, TimeMs now) {
    if (!buffered_waits_.empty()) RunEnded(task_id, now);
  }

  std::size_t size() const { return schedules_.size(); }
  // Since the book was made: ticks that submitted a task, and ticks let go.
  std::uint64_t ticks_fired() const { return ticks_fired_; }
  std::uint64_t ticks_skipped() const { return ticks_skipped_; }

 private:
  struct Entry;  // a schedule as held here (schedule_book.cc)
  struct DueLess {
    bool operator()(const Entry* a, const Entry* b) const;
  };
  struct DuePos {
    HeapPos& operator()(Entry* e) const;
  };

  // One due schedule: its buffered tick if its previous run has ended,
  // then its due ticks; records its row if anything changed.
  void Handle(Entry* e, TimeMs now, TaskHost* host);
  void FireTick(Entry* e, TimeMs tick, TimeMs now, TaskHost* host);
  // Puts it back in the heap at its next fire time, or leaves it out:
  // paused, past its end, or a buffered tick waiting for its previous run.
  void Arm(Entry* e, TimeMs now, const TaskHost& host);
  static bool RunGoing(const Entry& e, const TaskHost& host);
  static Schedule View(const Entry& e, std::size_t next_n, TimeMs now);
  static void Record(const Entry& e, TaskHost* host);
  void RunEnded(const std::string& task_id, TimeMs now);

  IdGenerator* const ids_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Entry>> schedules_;  // (ns, id)
  IndexedHeap<Entry, DueLess, DuePos> heap_;  // by due time
  // The previous run's task id -> the schedule whose buffered tick waits for it.
  std::unordered_map<std::string, Entry*> buffered_waits_;
  std::uint64_t ticks_fired_ = 0;
  std::uint64_t ticks_skipped_ = 0;
};

}  // namespace dray
