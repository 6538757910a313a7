// Reads a chaos history and the server's final state and says whether the
// promises held (Jepsen-style: the clients' view against the store's).
//
// What it reports (the names are issue 4's):
//   lost            an acknowledged submit whose task is missing, has another
//                   key, or is not terminal once the run has drained;
//   unexpected      a task no submit explains: an unknown key, a key whose
//                   every submit was refused, or two tasks with one key;
//   stale accepted  a heartbeat, complete or fail accepted under a token older
//                   than a lease of the same task that had already been
//                   handed out (its answer returned before the call began);
//   illegal         a history the state machine cannot produce: attempts not
//                   numbered 1..n, an earlier attempt that did not end in a
//                   retryable way, a last attempt that contradicts the state,
//                   more attempts than allowed, one attempt leased twice or
//                   tokens that do not grow with attempts, an accepted
//                   complete or final fail that did not end the task;
//   stuck           any task not terminal after the drain (acknowledged or not);
//   duplicates      attempts that ran again after an attempt of a healthy
//                   worker expired: allowed under faults (at-least-once), so
//                   counted, not failed.
#pragma once

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "chaos/history.h"
#include "dray/status.h"

namespace dray::chaos {

struct FinalAttempt {
  int number = 0;
  std::string worker;
  std::string outcome;     // running, succeeded, failed, expired, timed_out, cancelled
  std::string started_at;  // RFC 3339, as the API gives it
  std::string ended_at;    // empty while running
};

struct FinalTask {
  std::string id;
  std::string key;
  std::string state;
  int attempts = 0;
  int max_attempts = 0;
  std::vector<FinalAttempt> history;
};

// Reads one task as GET /v1/tasks/{id} or a listing gives it.
StatusOr<FinalTask> ParseFinalTask(const boost::json::value& v);

struct CheckOptions {
  // Workers that were paused, partitioned or killed on purpose: their
  // expired attempts are not counted as duplicates.
  std::set<std::string> faulty_workers;
  // Whether attempt times must not go backwards. Off for clock-jump runs,
  // where the server's clock itself goes backwards.
  bool check_times = true;
};

struct Report {
  std::size_t ops = 0;
  std::size_t acknowledged_submits = 0;
  std::size_t tasks = 0;
  std::size_t attempts = 0;
  std::size_t accepted_outcomes = 0;  // heartbeats, completes and fails answered yes
  std::size_t duplicates = 0;
  std::vector<std::string> lost, unexpected, stale_accepted, illegal, stuck;
  std::string history_path;  // where the history was saved, if it was

  bool ok() const {
    return lost.empty() && unexpected.empty() && stale_accepted.empty() && illegal.empty() &&
           stuck.empty();
  }
  // Counts on one line, then up to `examples` lines of each kind of failure.
  std::string Summary(std::size_t examples = 5) const;
};

Report Check(const std::vector<Op>& ops, const std::vector<FinalTask>& tasks,
             const CheckOptions& options = {});

}  // namespace dray::chaos
