// The change feed behind GET /v1/stream (issue 6): task state changes, in
// commit order, to subscribers as server-sent events, with resumption from
// a last event id.
//
// Changes are published after their commit, from the commit pipeline's
// thread, so a subscriber never sees a change that a crash could undo, and
// sees them in the order they were committed. Each change gets an event id
// "<epoch>-<seq>": the epoch is the server's start, seq counts up.
//
// Resumption: the feed keeps the most recent changes (bounded in count and
// bytes) while anyone subscribes, and for `keep_ms` after the last one
// leaves. A subscriber that comes back with a Last-Event-ID whose changes
// are all still kept gets them first, then live ones; one whose changes are
// not all kept (another epoch, too old, or published while nobody
// listened) gets an `event: reset` saying so, and should read the state
// afresh (GET) before following the stream. Nothing is lost silently.
//
// Threading: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "dray/types.h"
#include "server/http/http_types.h"

namespace dray {

struct ChangeFilter {
  std::string ns = "default";
  std::string queue;     // empty: any
  std::string workflow;  // empty: any
  std::string task;      // empty: any
  bool Matches(const Task& t) const;
};

struct ChangeFeedOptions {
  std::size_t max_changes = 100'000;   // kept for resumption
  std::size_t max_bytes = 64 << 20;    // of their text
  std::int64_t keep_ms = 5 * 60'000;   // recording goes on this long after the last subscriber
  std::size_t max_result_bytes = 64 << 10;  // a longer result is left out (result_truncated)
};

class ChangeFeed : public std::enable_shared_from_this<ChangeFeed> {
 public:
  // `clock` must outlive the feed; its time at construction is the epoch.
  ChangeFeed(ChangeFeedOptions options, const Clock* clock);

  // Whether changes are wanted now (cheap; the service asks before it
  // collects them). When it says no, the caller must call Missed().
  bool recording(TimeMs now) const;
  // Changes were committed and not published (nobody was listening).
  void Missed();
  // Committed changes, in commit order.
  void Publish(const std::vector<std::shared_ptr<const Task>>& changed);

  // Adds a subscriber writing to `out` (the feed must be owned by a
  // shared_ptr: `out` closing unsubscribes through a weak reference). `last_event_id` empty: from now on
  // (with `current`, if given, first: the state of the task it follows);
  // otherwise the kept changes after it first, or a reset event. Returns
  // its id for Unsubscribe, which `out` closing also does.
  std::uint64_t Subscribe(ChangeFilter filter, const std::string& last_event_id,
                          const std::shared_ptr<HttpStream>& out, const Task* current);
  void Unsubscribe(std::uint64_t id);
  // A comment line to every subscriber (keeps proxies from timing the
  // connection out, and finds clients that left).
  void Heartbeat();

  std::size_t subscribers() const;

 private:
  struct Change {
    std::uint64_t seq;
    std::string ns, queue, workflow, id;
    std::string text;  // the whole event, ready to write
  };
  struct Subscriber {
    ChangeFilter filter;
    std::shared_ptr<HttpStream> out;
  };
  std::string EventText(std::uint64_t seq, const Task& t) const;
  std::string PositionLocked() const;
  // Writes `text` to every subscriber (whose filter takes `change`, if
  // given), dropping those whose stream is closed.
  void WriteLocked(const std::string& text, const Task* change);
  void DropHoleLocked();

  const ChangeFeedOptions options_;
  const Clock* const clock_;
  const std::string epoch_;
  std::atomic<std::size_t> subscriber_count_{0};
  std::atomic<TimeMs> keep_until_{0};
  std::atomic<bool> hole_{false};  // changes went unpublished since the last Publish
  mutable std::mutex mu_;
  std::uint64_t next_seq_ = 1;      // guarded by mu_
  std::uint64_t replay_from_ = 1;   // guarded by mu_: every change from this seq on is kept
  std::deque<Change> kept_;         // guarded by mu_
  std::size_t kept_bytes_ = 0;      // guarded by mu_
  std::uint64_t next_subscriber_ = 1;              // guarded by mu_
  std::map<std::uint64_t, Subscriber> subscribers_;  // guarded by mu_
};

}  // namespace dray
